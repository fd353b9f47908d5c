package health

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
	x, err := ParseMariaPos(a)
	if err != nil {
		return "", err
	}
	y, err := ParseMariaPos(b)
	if err != nil {
		return "", err
	}
	for d, g := range y {
		if old, ok := x[d]; !ok || g.Seq > old.Seq {
			x[d] = g
		}
	}
	return x.String(), nil
}
