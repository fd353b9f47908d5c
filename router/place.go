package router

import (
	"time"

	"github.com/baton-proxy/baton/topology"
)

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

// WaitMisses records, per replica name, when a session's read_your_writes wait there last timed
// out. The zero value is ready to use.
type WaitMisses map[string]time.Time

// Add records a timed-out wait on replica name at t.
func (m *WaitMisses) Add(name string, t time.Time) {
	if *m == nil {
		*m = WaitMisses{}
	}
	(*m)[name] = t
}

// PickToWait returns the replica a read_your_writes read waits on when no replica is known to
// hold the session's last write, "" if none will do. Like PickReplica (sticky first, else drawn
// by weight), but it never picks a replica whose measured lag exceeds wait (it cannot catch up
// in time), nor one whose wait for this session timed out less than max(wait, 2 probe
// intervals) before now (the health checker may not have measured it since). avoid reports
// replicas that are gone or failed for this unit (may be nil).
func PickToWait(snap *topology.Snapshot, sticky string, wait, probeInterval time.Duration, missed WaitMisses,
	now time.Time, avoid func(string) bool, rnd func(n int) int) string {
	hold := max(wait, 2*probeInterval)
	return PickReplica(snap, sticky, func(name string) bool {
		if avoid != nil && avoid(name) {
			return true
		}
		i := snap.Index(name)
		return i < 0 || snap.Nodes[i].Lag > wait || now.Sub(missed[name]) < hold
	}, rnd)
}
