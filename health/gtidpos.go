package health

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// This file holds the MariaDB GTID position helpers the MySQL data path uses for
// read_your_writes: a session remembers the GTIDs of its writes as a position list and reads
// from a replica only once the replica's position (NodeState.ReplayPos) covers it. Pure.

// MariaGTIDCovers reports whether MariaDB GTID position list have (a replica's
// @@gtid_current_pos) includes every domain's sequence number of want. ok is false when
// either is not a GTID list.
func MariaGTIDCovers(have, want string) (covered, ok bool) {
	return covers(PosMariaGTID, have, want)
}

// MergeMariaGTIDs returns the position list that covers both a and b: per replication domain
// the GTID with the higher sequence number, domains in ascending order ("0-1-42,1-2-7"). Its
// text holds only digits, '-' and ','. An error means a or b is not a GTID list.
func MergeMariaGTIDs(a, b string) (string, error) {
	type gtid struct{ server, seq uint64 }
	pos := map[uint32]gtid{}
	for _, s := range []string{a, b} {
		for g := range strings.SplitSeq(s, ",") {
			g = strings.TrimSpace(g)
			if g == "" {
				continue
			}
			f := strings.Split(g, "-")
			if len(f) != 3 {
				return "", fmt.Errorf("health: bad GTID %q", g)
			}
			d, err1 := strconv.ParseUint(f[0], 10, 32)
			srv, err2 := strconv.ParseUint(f[1], 10, 32)
			n, err3 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				return "", fmt.Errorf("health: bad GTID %q", g)
			}
			if old, had := pos[uint32(d)]; !had || n > old.seq {
				pos[uint32(d)] = gtid{srv, n}
			}
		}
	}
	domains := make([]uint32, 0, len(pos))
	for d := range pos {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	var b2 strings.Builder
	for i, d := range domains {
		if i > 0 {
			b2.WriteByte(',')
		}
		fmt.Fprintf(&b2, "%d-%d-%d", d, pos[d].server, pos[d].seq)
	}
	return b2.String(), nil
}
