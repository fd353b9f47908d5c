package failover

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/baton-proxy/baton/health"
)

// GTID positions of MariaDB (a list of domain-server-seq, one per replication domain) and MySQL
// (a set of uuid:interval[:interval…] ranges). All functions here are pure.

// mariaDiverged reports whether node position have (its last GTID per domain) holds
// transactions that the source, whose @@gtid_binlog_state is src, never had: in some domain the
// node's last GTID d-S-N was written by server S, and the source's binary log holds nothing of S
// in that domain or only sequence numbers below N. Such a node cannot replicate from the source
// (MariaDB error 1236 under gtid_strict_mode). Comparing positions alone is not enough: an old
// primary at 0-1-27 looks behind a new primary at 0-2-3890, yet 0-1-24…27 exist only on it.
func mariaDiverged(have health.MariaPos, src mariaState) (string, bool) {
	for _, d := range slices.Sorted(maps.Keys(have)) {
		g := have[d]
		last, ok := src[[2]uint32{d, g.Server}]
		switch {
		case !ok:
			return fmt.Sprintf("its last transaction %d-%d-%d comes from server %d, of which the new primary's binary log has nothing in domain %d", d, g.Server, g.Seq, g.Server, d), true
		case last < g.Seq:
			return fmt.Sprintf("its last transaction %d-%d-%d is past the new primary's last from server %d in domain %d (%d-%d-%d)", d, g.Server, g.Seq, g.Server, d, d, g.Server, last), true
		}
	}
	return "", false
}

// mariaState is a MariaDB @@gtid_binlog_state: the last sequence number of each server in each
// domain, keyed by {domain, server}.
type mariaState map[[2]uint32]uint64

// parseMariaState parses a @@gtid_binlog_state such as "0-1-23,0-2-3890".
func parseMariaState(s string) (mariaState, error) {
	st := mariaState{}
	err := health.EachMariaGTID(s, func(d uint32, g health.MariaGTID) {
		k := [2]uint32{d, g.Server}
		st[k] = max(st[k], g.Seq)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
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
		x, err1 := health.ParseMariaPos(a)
		y, err2 := health.ParseMariaPos(b)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		aHasB, bHasA = x.Covers(y), y.Covers(x)
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
	x, err1 := health.ParseMariaPos(a)
	y, err2 := health.ParseMariaPos(b)
	if err1 != nil || err2 != nil {
		return -1
	}
	var n uint64
	for d, g := range x {
		if s := y[d].Seq; g.Seq > s {
			n += g.Seq - s
		}
	}
	return int64(n)
}
