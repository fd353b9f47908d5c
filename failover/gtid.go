package failover

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// GTID positions of MariaDB (a list of domain-server-seq, one per replication domain) and MySQL
// (a set of uuid:interval[:interval…] ranges). All functions here are pure.

// mariaGTID is the last transaction of one replication domain.
type mariaGTID struct {
	server uint32
	seq    uint64
}

// parseMariaPos parses "0-1-42,1-2-7"; "" is the empty position. Where a domain appears twice
// (it does not in server output), the higher sequence number wins.
func parseMariaPos(s string) (map[uint32]mariaGTID, error) {
	pos := map[uint32]mariaGTID{}
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		f := strings.Split(g, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("failover: bad MariaDB GTID %q", g)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		srv, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("failover: bad MariaDB GTID %q", g)
		}
		if old, ok := pos[uint32(d)]; !ok || n > old.seq {
			pos[uint32(d)] = mariaGTID{uint32(srv), n}
		}
	}
	return pos, nil
}

// formatMariaPos writes a position with domains in ascending order.
func formatMariaPos(pos map[uint32]mariaGTID) string {
	var b strings.Builder
	for i, d := range slices.Sorted(maps.Keys(pos)) {
		if i > 0 {
			b.WriteByte(',')
		}
		g := pos[d]
		fmt.Fprintf(&b, "%d-%d-%d", d, g.server, g.seq)
	}
	return b.String()
}

// mergeMariaPos returns, per domain, the newer GTID of a and b.
func mergeMariaPos(a, b string) (string, error) {
	x, err := parseMariaPos(a)
	if err != nil {
		return "", err
	}
	y, err := parseMariaPos(b)
	if err != nil {
		return "", err
	}
	for d, g := range y {
		if old, ok := x[d]; !ok || g.seq > old.seq {
			x[d] = g
		}
	}
	return formatMariaPos(x), nil
}

// mariaCovers reports whether have reached want's sequence number in every domain of want.
func mariaCovers(have, want map[uint32]mariaGTID) bool {
	for d, g := range want {
		if have[d].seq < g.seq {
			return false
		}
	}
	return true
}

// mariaDiverged reports whether node position have holds transactions that source position src
// cannot have: a domain where have is further, or the same sequence number written by another
// server. Such a node cannot replicate from src (MariaDB error 1236 under gtid_strict_mode).
func mariaDiverged(have, src map[uint32]mariaGTID) (string, bool) {
	for d, g := range have {
		s, ok := src[d]
		switch {
		case !ok || g.seq > s.seq:
			return fmt.Sprintf("domain %d is at %d-%d-%d, the new primary at %d", d, d, g.server, g.seq, s.seq), true
		case g.seq == s.seq && g.server != s.server:
			return fmt.Sprintf("domain %d: %d-%d-%d here, %d-%d-%d on the new primary", d, d, g.server, g.seq, d, s.server, s.seq), true
		}
	}
	return "", false
}

// gtidInterval is an inclusive range of MySQL transaction numbers.
type gtidInterval struct{ lo, hi uint64 }

// parseMySQLSet parses a MySQL GTID set ("uuid:1-5:7,uuid2:1-3", white space and line breaks
// allowed) into sorted, merged intervals per source uuid (lower case). Tagged GTIDs of MySQL
// 8.3+ (uuid:tag:1-5) keep the tag as part of the key.
func parseMySQLSet(s string) (map[string][]gtidInterval, error) {
	set := map[string][]gtidInterval{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.Join(strings.Fields(part), "")
		if part == "" {
			continue
		}
		f := strings.Split(part, ":")
		if len(f) < 2 {
			return nil, fmt.Errorf("failover: bad MySQL GTID set element %q", part)
		}
		key := strings.ToLower(f[0])
		for _, r := range f[1:] {
			lo, hi, isRange := strings.Cut(r, "-")
			a, err1 := strconv.ParseUint(lo, 10, 64)
			if err1 != nil { // a tag
				key += ":" + strings.ToLower(r)
				continue
			}
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.ParseUint(hi, 10, 64)
			}
			if err2 != nil || b < a || a == 0 {
				return nil, fmt.Errorf("failover: bad MySQL GTID interval %q", r)
			}
			set[key] = append(set[key], gtidInterval{a, b})
		}
	}
	for k, iv := range set {
		set[k] = mergeIntervals(iv)
	}
	return set, nil
}

// mergeIntervals sorts and merges overlapping or adjacent intervals.
func mergeIntervals(iv []gtidInterval) []gtidInterval {
	slices.SortFunc(iv, func(a, b gtidInterval) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	out := iv[:0]
	for _, x := range iv {
		if n := len(out); n > 0 && x.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, x.hi)
			continue
		}
		out = append(out, x)
	}
	return out
}

// mysqlMissing counts the transactions of b that a lacks.
func mysqlMissing(a, b map[string][]gtidInterval) uint64 {
	var n uint64
	for k, bs := range b {
		as := a[k]
		for _, x := range bs {
			n += x.hi - x.lo + 1
			for _, y := range as { // subtract the overlap; as is disjoint
				lo, hi := max(x.lo, y.lo), min(x.hi, y.hi)
				if lo <= hi {
					n -= hi - lo + 1
				}
			}
		}
	}
	return n
}

// isMySQLSet tells a MySQL GTID set from a MariaDB GTID list: only the former has ':'.
func isMySQLSet(s string) bool { return strings.Contains(s, ":") }

// gtidCompare orders two positions of either flavour (see Engine.Compare).
func gtidCompare(a, b string) (int, bool) {
	var aHasB, bHasA bool
	if isMySQLSet(a) || isMySQLSet(b) {
		x, err1 := parseMySQLSet(a)
		y, err2 := parseMySQLSet(b)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		aHasB, bHasA = mysqlMissing(x, y) == 0, mysqlMissing(y, x) == 0
	} else {
		x, err1 := parseMariaPos(a)
		y, err2 := parseMariaPos(b)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		aHasB, bHasA = mariaCovers(x, y), mariaCovers(y, x)
	}
	switch {
	case aHasB && bHasA:
		return 0, true
	case aHasB:
		return 1, true
	case bHasA:
		return -1, true
	}
	return 0, false
}

// gtidDistance counts the transactions a has and b lacks (see Engine.Distance).
func gtidDistance(a, b string) int64 {
	if isMySQLSet(a) || isMySQLSet(b) {
		x, err1 := parseMySQLSet(a)
		y, err2 := parseMySQLSet(b)
		if err1 != nil || err2 != nil {
			return -1
		}
		return int64(mysqlMissing(y, x))
	}
	x, err1 := parseMariaPos(a)
	y, err2 := parseMariaPos(b)
	if err1 != nil || err2 != nil {
		return -1
	}
	var n uint64
	for d, g := range x {
		if s := y[d].seq; g.seq > s {
			n += g.seq - s
		}
	}
	return int64(n)
}
