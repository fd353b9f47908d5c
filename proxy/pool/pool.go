// Package pool keeps the backend connections of one database node for every engine, sized like
// PgBouncer's pools:
//
//   - at most pool.size connections per key (user, database), plus pool.reserve_size more for a
//     session that has queued for pool.reserve_timeout;
//   - at most pool.max_per_node for all keys of the node together: when it is reached, idle
//     connections of other keys are closed to make room;
//   - a session that finds no connection free queues, first come first served, for up to
//     pool.acquire_timeout. A returned connection is handed straight to the oldest session
//     queued for its key, and room freed by a closed one goes to the oldest session (of any
//     key) that may use it: one wake-up per connection, however many sessions wait;
//   - idle connections are reset before reuse, closed after pool.idle_timeout, and a connection
//     older than pool.server_lifetime is closed when it is checked in or out, never while in use.
//
// The engine supplies how to dial, reset and close a connection; the pool never looks inside,
// except to check, before handing out an idle connection, that its server has not closed the
// socket, and to close every socket of a node at once (Cut) when it stops being the primary.
package pool

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// Key identifies interchangeable connections of one node. Variant separates connections that
// differ in another way the engine cares about (MySQL: the negotiated capability flags).
type Key struct{ User, Database, Variant string }

// Conn is a pooled connection: comparable (a pointer), closed by Close on the goroutine that
// owns it, and built on NetConn, its socket (nil when there is none to check).
type Conn interface {
	comparable
	Close()
	NetConn() net.Conn
}

// Node pools the connections of one node. Safe for concurrent use.
type Node[C Conn] struct {
	cfg   *topology.Pool
	dial  func(ctx context.Context, k Key) (C, error)
	reset func(C) bool

	now func() time.Time // the clock of lifetimes and idle times (tests inject one)

	// keySize, when set, gives a key its own pool.size (users[].pool_size); 0 = pool.size.
	keySize func(Key) int

	mu      sync.Mutex
	keys    map[Key]*keyPool[C]
	waiting map[*keyPool[C]]struct{} // keys with sessions queued
	live    map[C]liveConn[C]        // every open connection, idle or handed out (for Cut)
	open    int                      // connections open or being dialed, all keys
	closed  bool

	waits waitHist // how long Acquire waited (wait.go)
}

// keyPool is the state of one key. Invariant: a key with sessions queued has no idle
// connection (a returned one goes to the oldest of them).
type keyPool[C Conn] struct {
	key  Key
	idle []idleConn[C] // most recently returned last
	open int           // connections of the key open or being dialed
	q    waitQueue[C]
}

type idleConn[C Conn] struct {
	c     C
	since time.Time
}

type liveConn[C Conn] struct {
	kp     *keyPool[C] // the key the connection counts in
	opened time.Time
}

// NewNode returns a pool sized by cfg (Size, ReserveSize, ReserveTimeout, MaxPerNode,
// AcquireTimeout, ConnectTimeout, IdleTimeout, ServerLifetime), read at each use. dial opens a
// connection (within ctx); reset readies a released connection for another session and reports
// whether it may be reused.
func NewNode[C Conn](cfg *topology.Pool, dial func(ctx context.Context, k Key) (C, error), reset func(C) bool) *Node[C] {
	return &Node[C]{cfg: cfg, dial: dial, reset: reset, now: time.Now,
		keys: map[Key]*keyPool[C]{}, waiting: map[*keyPool[C]]struct{}{}, live: map[C]liveConn[C]{}}
}

// SetKeySize gives keys their own pool size (users[].pool_size): f returns a key's size, or 0
// for pool.size. Call it before the node is used.
func (n *Node[C]) SetKeySize(f func(Key) int) { n.keySize = f }

// size is the per-key bound of kp: its own size (SetKeySize), else pool.size, or the node's
// bound when that is 0 (unset).
func (n *Node[C]) size(kp *keyPool[C]) int {
	if n.keySize != nil {
		if s := n.keySize(kp.key); s > 0 {
			return min(s, n.maxOpen())
		}
	}
	if n.cfg.Size <= 0 {
		return n.maxOpen()
	}
	return n.cfg.Size
}

// ownSize reports whether kp's size is its own (users[].pool_size) rather than pool.size.
func (n *Node[C]) ownSize(kp *keyPool[C]) bool { return n.keySize != nil && n.keySize(kp.key) > 0 }

// maxOpen is the per-node bound (pool.max_per_node; 0 = no bound).
func (n *Node[C]) maxOpen() int {
	if n.cfg.MaxPerNode <= 0 {
		return int(^uint(0) >> 1)
	}
	return n.cfg.MaxPerNode
}

// limit is how many connections a queued session may make its key hold: pool.size, plus
// pool.reserve_size once it has queued for pool.reserve_timeout.
func (n *Node[C]) limit(kp *keyPool[C], reserve bool) int {
	if reserve && n.cfg.ReserveSize > 0 && n.size(kp) < n.maxOpen() {
		return min(n.size(kp)+n.cfg.ReserveSize, n.maxOpen())
	}
	return n.size(kp)
}

// Acquire returns an idle connection for k, or dials a new one when the key and the node have
// room, or else queues (first come, first served) for up to the acquire timeout until a session
// returns a connection of k or room to dial opens up. An idle connection whose server has closed
// it (a node killed or restarted, a fenced primary's sessions terminated) is discarded, not
// handed out: a statement sent on it would fail with an unknown outcome. The error after the
// acquire timeout is a *TimeoutError (errors.Is ErrTimeout); when ctx ends first, ctx's error.
func (n *Node[C]) Acquire(ctx context.Context, k Key) (C, error) {
	var zero C
	start := time.Now()
	defer func() { n.waits.observe(time.Since(start)) }()
	for {
		var victims []C
		n.mu.Lock()
		g, fromIdle, w, ds, err := n.takeLocked(k, &victims)
		n.mu.Unlock()
		closeConns(victims)
		deliver(ds)
		if err != nil {
			return zero, err
		}
		if w != nil {
			if g, err = n.wait(ctx, w, start); err != nil {
				return zero, err
			}
		}
		if g.err != nil {
			return zero, g.err
		}
		if g.dial {
			return n.dialFor(ctx, k)
		}
		if fromIdle {
			if nc := g.c.NetConn(); nc != nil && peerClosed(nc) {
				n.discard(g.c)
				continue
			}
		}
		return g.c, nil
	}
}

// takeLocked serves k at once when it can: with an idle connection (fromIdle) when nobody of k
// is queued, or with room to dial (counted) when nobody at all is queued. Otherwise it queues a
// new waiter and hands out whatever room there is in arrival order (which may be to this
// waiter: ds holds the grants to deliver after unlocking). Connections to close after unlocking
// (expired idle ones of k, idle ones of other keys evicted for room) are added to victims.
func (n *Node[C]) takeLocked(k Key, victims *[]C) (g grant[C], fromIdle bool, w *waiter[C], ds []delivery[C], err error) {
	if n.closed {
		return g, false, nil, nil, ErrClosed
	}
	kp := n.keyLocked(k)
	if kp.q.n == 0 {
		now := n.now()
		for len(kp.idle) > 0 {
			c := kp.idle[len(kp.idle)-1].c
			kp.idle = kp.idle[:len(kp.idle)-1]
			if !n.expiredLocked(c, now) {
				return grant[C]{c: c}, true, nil, nil, nil
			}
			n.forgetLocked(c)
			*victims = append(*victims, c)
		}
		if len(n.waiting) == 0 && kp.open < n.size(kp) && n.open < n.maxOpen() {
			n.countLocked(kp)
			return grant[C]{dial: true}, false, nil, nil, nil
		}
	}
	w = &waiter[C]{kp: kp, since: time.Now(), ch: make(chan grant[C], 1)}
	kp.q.push(w)
	n.waiting[kp] = struct{}{}
	return g, false, w, n.grantRoomLocked(victims), nil
}

// wait waits for w's grant until the acquire timeout (counted from start) or the end of ctx.
// At pool.reserve_timeout it lets w (and every older waiter of its key) use the reserve.
func (n *Node[C]) wait(ctx context.Context, w *waiter[C], start time.Time) (grant[C], error) {
	timeout := time.NewTimer(n.cfg.AcquireTimeout.D() - time.Since(start))
	defer timeout.Stop()
	var reserve <-chan time.Time
	if n.cfg.ReserveSize > 0 {
		rt := time.NewTimer(n.cfg.ReserveTimeout.D() - time.Since(start))
		defer rt.Stop()
		reserve = rt.C
	}
	for {
		select {
		case g := <-w.ch:
			return g, nil
		case <-reserve:
			reserve = nil
			var victims []C
			var ds []delivery[C]
			n.mu.Lock()
			if w.queued {
				for x := w; x != nil; x = x.prev {
					x.reserve = true
				}
				ds = n.grantRoomLocked(&victims)
			}
			n.mu.Unlock()
			closeConns(victims)
			deliver(ds)
		case <-timeout.C:
			return n.giveUp(w, start, nil)
		case <-ctx.Done():
			return n.giveUp(w, start, ctx.Err())
		}
	}
}

// giveUp takes w out of its queue and returns the timeout error (or cause), unless a grant beat
// it to it: then the grant, which is on its way.
func (n *Node[C]) giveUp(w *waiter[C], start time.Time, cause error) (grant[C], error) {
	n.mu.Lock()
	if !w.queued {
		n.mu.Unlock()
		return <-w.ch, nil
	}
	kp := w.kp
	kp.q.remove(w)
	n.dequeuedLocked(kp)
	err := cause
	if err == nil {
		te := &TimeoutError{Waited: time.Since(start), Key: kp.key, Setting: "pool.max_per_node",
			Open: n.open, Size: n.cfg.Size, Max: n.cfg.MaxPerNode}
		if w.reserve {
			te.Reserve = max(0, n.cfg.ReserveSize)
		}
		if kp.open >= n.limit(kp, w.reserve) {
			te.Setting, te.Open, te.Size = "pool.size", kp.open, n.size(kp)
			if n.ownSize(kp) {
				te.Setting = "users[].pool_size"
			}
		}
		err = te
	}
	n.mu.Unlock()
	return grant[C]{}, err
}

// grantRoomLocked hands room to dial, while the node has some (or idle connections of other
// keys to close for it), to the oldest queued sessions whose keys are below their limit. It
// returns the grants to deliver after unlocking; evicted connections are added to victims.
func (n *Node[C]) grantRoomLocked(victims *[]C) []delivery[C] {
	var ds []delivery[C]
	for len(n.waiting) > 0 {
		var best *keyPool[C]
		for kp := range n.waiting {
			h := kp.q.head
			if kp.open < n.limit(kp, h.reserve) && (best == nil || h.since.Before(best.q.head.since)) {
				best = kp
			}
		}
		if best == nil || (n.open >= n.maxOpen() && !n.evictLocked(best, victims)) {
			break
		}
		n.countLocked(best)
		w := best.q.pop()
		n.dequeuedLocked(best)
		ds = append(ds, delivery[C]{w, grant[C]{dial: true}})
	}
	return ds
}

// handOffLocked gives c, a connection of kp just returned, to kp's oldest queued session, if any.
func (n *Node[C]) handOffLocked(kp *keyPool[C], c C) (delivery[C], bool) {
	w := kp.q.pop()
	if w == nil {
		return delivery[C]{}, false
	}
	n.dequeuedLocked(kp)
	return delivery[C]{w, grant[C]{c: c}}, true
}

// deliver sends grants to their waiters (never blocks: each waiter gets one, on a buffered
// channel). Called without the lock.
func deliver[C Conn](ds []delivery[C]) {
	for _, d := range ds {
		d.w.ch <- d.g
	}
}

// closeConns closes connections already forgotten by the pool. Called without the lock.
func closeConns[C Conn](cs []C) {
	for _, c := range cs {
		c.Close()
	}
}

// keyLocked returns k's state, creating it.
func (n *Node[C]) keyLocked(k Key) *keyPool[C] {
	kp := n.keys[k]
	if kp == nil {
		kp = &keyPool[C]{key: k}
		n.keys[k] = kp
	}
	return kp
}

// countLocked counts a connection about to be dialed for kp.
func (n *Node[C]) countLocked(kp *keyPool[C]) {
	kp.open++
	n.open++
}

// uncountLocked undoes countLocked (a dial failed, a connection was forgotten).
func (n *Node[C]) uncountLocked(kp *keyPool[C]) {
	kp.open--
	n.open--
	n.tidyLocked(kp)
}

// dequeuedLocked notes that a waiter left kp's queue.
func (n *Node[C]) dequeuedLocked(kp *keyPool[C]) {
	if kp.q.n == 0 {
		delete(n.waiting, kp)
		n.tidyLocked(kp)
	}
}

// tidyLocked drops the state of a key that has nothing left.
func (n *Node[C]) tidyLocked(kp *keyPool[C]) {
	if kp.open == 0 && kp.q.n == 0 && len(kp.idle) == 0 && n.keys[kp.key] == kp {
		delete(n.keys, kp.key)
	}
}

// forgetLocked stops counting c, an open connection (idle or handed out), which the caller
// closes after unlocking.
func (n *Node[C]) forgetLocked(c C) {
	lc, ok := n.live[c]
	if !ok {
		panic("BUG: pool: forgetting a connection that is not open (released twice?)")
	}
	delete(n.live, c)
	n.uncountLocked(lc.kp)
}

// evictLocked closes (forgets, adds to victims) the longest-idle connection of a key other than
// except, to make room on a full node. It reports whether there was one.
func (n *Node[C]) evictLocked(except *keyPool[C], victims *[]C) bool {
	var from *keyPool[C]
	for _, kp := range n.keys {
		if kp != except && len(kp.idle) > 0 && (from == nil || kp.idle[0].since.Before(from.idle[0].since)) {
			from = kp
		}
	}
	if from == nil {
		return false
	}
	c := from.idle[0].c
	from.idle = from.idle[1:]
	n.forgetLocked(c)
	*victims = append(*victims, c)
	return true
}

// dialFor dials a connection for k, whose room is counted already; a failed dial gives the room
// to the next queued session.
func (n *Node[C]) dialFor(ctx context.Context, k Key) (C, error) {
	dctx, cancel := context.WithTimeout(ctx, n.cfg.ConnectTimeout.D())
	defer cancel()
	c, err := n.dial(dctx, k)
	var victims []C
	n.mu.Lock()
	kp := n.keyLocked(k)
	if err != nil {
		n.uncountLocked(kp)
		ds := n.grantRoomLocked(&victims)
		n.mu.Unlock()
		closeConns(victims)
		deliver(ds)
		var zero C
		return zero, err
	}
	n.live[c] = liveConn[C]{kp: kp, opened: n.now()}
	n.mu.Unlock()
	return c, nil
}

// expiredLocked reports whether c has outlived the server lifetime at now.
func (n *Node[C]) expiredLocked(c C, now time.Time) bool {
	life := n.cfg.ServerLifetime.D()
	lc, ok := n.live[c]
	return life > 0 && ok && now.Sub(lc.opened) >= life
}

// discard closes an open connection (idle or handed out) and gives its room to the next queued
// session.
func (n *Node[C]) discard(c C) {
	victims := []C{c}
	n.mu.Lock()
	n.forgetLocked(c)
	ds := n.grantRoomLocked(&victims)
	n.mu.Unlock()
	closeConns(victims)
	deliver(ds)
}

// Release gives c (acquired for k) back. It is reset and handed to the oldest session queued
// for its key, or kept idle; a connection that is not reusable, has outlived the server
// lifetime, is a reserve connection nobody is queued for, or is released under another key
// than it was acquired for (it counts against that one), is closed.
func (n *Node[C]) Release(c C, k Key, reusable bool) {
	if reusable {
		n.mu.Lock()
		reusable = !n.expiredLocked(c, n.now())
		n.mu.Unlock()
	}
	if reusable {
		reusable = n.reset(c)
	}
	n.mu.Lock()
	kp := n.live[c].kp
	if kp == nil {
		panic("BUG: pool: releasing a connection that is not open (released twice?)")
	}
	if !reusable || n.closed || k != kp.key || (kp.q.n == 0 && kp.open > n.size(kp)) {
		n.mu.Unlock()
		n.discard(c)
		return
	}
	if d, ok := n.handOffLocked(kp, c); ok {
		n.mu.Unlock()
		deliver([]delivery[C]{d})
		return
	}
	kp.idle = append(kp.idle, idleConn[C]{c: c, since: n.now()})
	var victims []C
	ds := n.grantRoomLocked(&victims) // a session of another key queued on a full node evicts it
	n.mu.Unlock()
	closeConns(victims)
	deliver(ds)
}
