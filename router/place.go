package router

import (
	"math/rand/v2"
	"sync"
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
	// Avoid reports replicas that just failed for this session (may be nil). An avoided
	// primary is no read candidate either; it still takes what must run on the primary.
	Avoid func(name string) bool
	// PrimaryWeight is the cluster's primary_read_weight: when > 0 the primary is one more
	// read candidate beside the readable replicas, drawn with this weight (and kept while it
	// is Sticky). It always holds the session's writes, so read_your_writes never excludes it.
	PrimaryWeight int
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

// ReadsPrimary reports whether Place treats the primary as a read candidate for a unit of
// class c (primary_read_weight > 0): a unit it then puts on the primary (route Primary) was
// drawn there as a read, not sent there for want of a replica, so a read_your_writes read need
// not wait for a replica to catch up.
func ReadsPrimary(c Class, p Placement) bool {
	return p.PrimaryWeight > 0 && WantsReplica(c, p)
}

// Place chooses the node for a unit outside a transaction: a read candidate (the sticky one
// first, else one drawn by weight with rnd) when the unit may read from a replica, else the
// primary. The read candidates are the readable replicas that are not avoided and, when
// p.PrimaryWeight > 0, the primary. route is Primary whenever node is the primary, whether it
// was drawn as a read candidate or the unit needs it. ok is false when the unit needs the
// primary and there is none.
func Place(snap *topology.Snapshot, c Class, p Placement, rnd func(n int) int) (node string, route Route, ok bool) {
	if snap == nil {
		return "", Primary, false
	}
	if WantsReplica(c, p) {
		if i := pickRead(snap, p.Sticky, p.Avoid, p.PrimaryWeight, rnd); i >= 0 {
			if i == snap.Primary {
				return snap.Nodes[i].Name, Primary, true
			}
			return snap.Nodes[i].Name, Replica, true
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
	if i := pickRead(snap, sticky, avoid, 0, rnd); i >= 0 {
		return snap.Nodes[i].Name
	}
	return ""
}

// pickRead returns the index in snap.Nodes of a read candidate: the readable replicas and, when
// primaryWeight > 0, the primary (unless it is draining), minus those avoid reports. The sticky
// one wins when it is a candidate; otherwise each is drawn with probability proportional to its
// weight (the primary's: primaryWeight). -1 if no candidate has a weight.
func pickRead(snap *topology.Snapshot, sticky string, avoid func(string) bool, primaryWeight int, rnd func(n int) int) int {
	prim := -1
	if pn := snap.PrimaryNode(); pn != nil && primaryWeight > 0 && !pn.Drain && (avoid == nil || !avoid(pn.Name)) {
		prim = snap.Primary
	}
	ok := func(i int) bool { return i != prim && (avoid == nil || !avoid(snap.Nodes[i].Name)) }
	total := 0
	for _, i := range snap.Readable {
		if !ok(i) {
			continue
		}
		if sticky != "" && snap.Nodes[i].Name == sticky {
			return i
		}
		total += snap.Nodes[i].Weight
	}
	if prim >= 0 {
		if sticky != "" && snap.Nodes[prim].Name == sticky {
			return prim
		}
		total += primaryWeight
	}
	if total <= 0 {
		return -1
	}
	r := rnd(total)
	for _, i := range snap.Readable {
		if !ok(i) {
			continue
		}
		if r -= snap.Nodes[i].Weight; r < 0 {
			return i
		}
	}
	return prim // the draw fell in the primary's share (or, with prim -1, nowhere)
}

// Spread is a draw for Place (rnd) that deals the values of [0, n) out like a shuffled deck:
// each n consecutive draws with the same n return every value once, in random order. A session
// keeps the node it drew while it can, so the draws are mostly session starts; dealt rather than
// drawn independently, 16 sessions over three equal nodes land 6, 5 and 5, not 7, 5 and 4 or
// worse, and in proportion to the weights in general. The order within a deck is random, so a
// pattern in who draws (every second draw from one kind of session) does not choose the node.
// Safe for concurrent use; one deck for the process (a draw with another n starts a new deck).
func Spread(n int) int {
	if n <= 1 {
		return 0
	}
	if n > maxDeck {
		return rand.IntN(n)
	}
	deck.Lock()
	defer deck.Unlock()
	if len(deck.cards) != n || deck.next >= n {
		deck.cards = deck.cards[:0]
		for i := range n {
			deck.cards = append(deck.cards, i)
		}
		rand.Shuffle(n, func(i, j int) { deck.cards[i], deck.cards[j] = deck.cards[j], deck.cards[i] })
		deck.next = 0
	}
	deck.next++
	return deck.cards[deck.next-1]
}

// maxDeck bounds Spread's deck (the total weight of the candidates); above it draws are random.
const maxDeck = 4096

var deck struct {
	sync.Mutex
	cards []int
	next  int
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
