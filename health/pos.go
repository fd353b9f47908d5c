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
	err := EachMariaGTID(s, func(d uint32, g MariaGTID) {
		if old, ok := pos[d]; !ok || g.Seq > old.Seq {
			pos[d] = g
		}
	})
	if err != nil {
		return nil, err
	}
	return pos, nil
}

// EachMariaGTID calls f for every GTID domain-server-seq of a comma-separated MariaDB GTID list
// (a position or a @@gtid_binlog_state), in order; "" holds none.
func EachMariaGTID(s string, f func(domain uint32, g MariaGTID)) error {
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		p := strings.Split(g, "-")
		if len(p) != 3 {
			return fmt.Errorf("health: bad GTID %q", g)
		}
		d, err1 := strconv.ParseUint(p[0], 10, 32)
		srv, err2 := strconv.ParseUint(p[1], 10, 32)
		n, err3 := strconv.ParseUint(p[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("health: bad GTID %q", g)
		}
		f(uint32(d), MariaGTID{uint32(srv), n})
	}
	return nil
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
