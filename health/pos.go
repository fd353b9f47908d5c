package health

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Replication positions, shared by the lag measurement here, the failover steps (package
// failover) and read_your_writes (proxy/myproxy). All pure.

// ParseLSN parses PostgreSQL pg_lsn text "X/Y" (two hexadecimal 32-bit halves) into a byte
// position.
func ParseLSN(s string) (int64, error) { return parseLSN(s) }

// LSNDistance returns a − b in bytes when both are pg_lsn text; ok is false otherwise.
func LSNDistance(a, b string) (d int64, ok bool) { return lsnDistance(a, b) }

// SameEndpoint reports whether two host:port strings name the same server: equal ports and
// equal hosts (ignoring case), or both hosts loopback. No name is resolved.
func SameEndpoint(a, b string) bool { return sameEndpoint(a, b) }

// MariaGTID is the last transaction of one MariaDB replication domain.
type MariaGTID struct {
	Server uint32
	Seq    uint64
}

// MariaPos is a MariaDB GTID position (@@gtid_current_pos, Gtid_IO_Pos …): per replication
// domain, its last transaction.
type MariaPos map[uint32]MariaGTID

// ParseMariaPos parses a GTID position list, "0-1-42,1-2-7"; "" is the empty position. Where a
// domain appears twice (it does not in server output), the higher sequence number wins.
func ParseMariaPos(s string) (MariaPos, error) {
	pos := MariaPos{}
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		f := strings.Split(g, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("health: bad GTID %q", g)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		srv, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("health: bad GTID %q", g)
		}
		if old, ok := pos[uint32(d)]; !ok || n > old.Seq {
			pos[uint32(d)] = MariaGTID{uint32(srv), n}
		}
	}
	return pos, nil
}

// String writes the position with domains in ascending order; its text holds only digits, '-'
// and ','.
func (p MariaPos) String() string {
	var b strings.Builder
	for i, d := range slices.Sorted(maps.Keys(p)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d-%d", d, p[d].Server, p[d].Seq)
	}
	return b.String()
}

// Covers reports whether p has reached want's sequence number in every domain of want. The
// server id does not order positions within a domain.
func (p MariaPos) Covers(want MariaPos) bool {
	for d, g := range want {
		if p[d].Seq < g.Seq {
			return false
		}
	}
	return true
}
