package router

import "github.com/baton-proxy/baton/topology"

// Placement is what node choice needs to know of a session outside a transaction.
type Placement struct {
	// Pinned: the session holds primary-only state (temp tables, locks, LISTEN …).
	Pinned      bool
	Consistency topology.Consistency
	// StateFull: the session's replayed state outgrew its limit; it stays on the primary.
	StateFull bool
	// Sticky names the replica the session already has a connection to ("" for none); it is
	// preferred while readable so that a session uses few backend connections.
	Sticky string
	// Avoid reports replicas that just failed for this session (may be nil).
	Avoid func(name string) bool
}

// WantsReplica reports whether a unit of class c may be served by a replica.
func WantsReplica(c Class, p Placement) bool {
	if p.Pinned {
		return false
	}
	if c.Hint && c.Route == Replica {
		return true // an explicit hint outranks the consistency mode and the state limit
	}
	if p.Consistency == topology.PrimaryOnly || p.StateFull {
		return false
	}
	return (c.Route == Replica && c.Tx == TxNone) || c.Tx == TxBeginReadOnly
}

// Place chooses the node for a unit outside a transaction: a readable replica (the sticky one
// first, else one drawn by weight with rnd) when the unit may read from one, else the primary.
// ok is false when the unit needs the primary and there is none.
func Place(snap *topology.Snapshot, c Class, p Placement, rnd func(n int) int) (node string, route Route, ok bool) {
	if snap == nil {
		return "", Primary, false
	}
	if WantsReplica(c, p) {
		if name := PickReplica(snap, p.Sticky, p.Avoid, rnd); name != "" {
			return name, Replica, true
		}
	}
	if pn := snap.PrimaryNode(); pn != nil {
		return pn.Name, Primary, true
	}
	return "", Primary, false
}

// PickReplica returns a readable replica's name: sticky if it is readable and not avoided,
// else one drawn with probability proportional to its weight; "" if none.
func PickReplica(snap *topology.Snapshot, sticky string, avoid func(string) bool, rnd func(n int) int) string {
	ok := func(i int) bool { return avoid == nil || !avoid(snap.Nodes[i].Name) }
	total := 0
	for _, i := range snap.Readable {
		if !ok(i) {
			continue
		}
		if sticky != "" && snap.Nodes[i].Name == sticky {
			return sticky
		}
		total += snap.Nodes[i].Weight
	}
	if total <= 0 {
		return ""
	}
	r := rnd(total)
	for _, i := range snap.Readable {
		if !ok(i) {
			continue
		}
		if r -= snap.Nodes[i].Weight; r < 0 {
			return snap.Nodes[i].Name
		}
	}
	return ""
}
