// Package pool keeps the backend connections of one database node for every engine: a bound on
// open connections per node, idle connections kept per (user, database), eviction of idle ones
// of other keys when the bound is reached, an acquire timeout, a reset before reuse, the
// closing of connections idle too long, and a maximum lifetime (cfg.ServerLifetime): a
// connection older than that is closed when it is checked in or out, never while in use.
//
// The engine supplies how to dial, reset and close a connection; the pool never looks inside,
// except to check, before handing out an idle connection, that its server has not closed the
// socket, and to close every socket of a node at once (Cut) when it stops being the primary.
package pool

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// ErrTimeout is returned when no connection became free within the acquire timeout.
var ErrTimeout = errors.New("pool: timed out waiting for a free backend connection")

// ErrClosed is returned by Acquire after CloseAll.
var ErrClosed = errors.New("pool: closed")

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
	slots chan struct{} // one token per open connection

	now func() time.Time // the clock (tests inject one)

	mu     sync.Mutex
	idle   map[Key][]idleConn[C]
	live   map[C]time.Time // every open connection, idle or handed out (for Cut), and when it was opened
	wake   chan struct{}   // closed (and cleared) when a connection is released to the idle list
	closed bool

	waits waitHist // how long Acquire waited (wait.go)
}

type idleConn[C Conn] struct {
	c     C
	since time.Time
}

// NewNode returns a pool bounded by cfg.MaxPerNode. dial opens a connection (within ctx);
// reset readies a released connection for another session and reports whether it may be reused.
func NewNode[C Conn](cfg *topology.Pool, dial func(ctx context.Context, k Key) (C, error), reset func(C) bool) *Node[C] {
	return &Node[C]{cfg: cfg, dial: dial, reset: reset, slots: make(chan struct{}, cfg.MaxPerNode), now: time.Now,
		idle: map[Key][]idleConn[C]{}, live: map[C]time.Time{}}
}

// Acquire returns an idle connection for k or dials a new one, waiting up to the acquire timeout
// for room under the bound or for a connection of k to come back (transaction pooling hands
// connections from session to session). An idle connection whose server has closed it (a node
// killed or restarted, a fenced primary's sessions terminated) is discarded, not handed out: a
// statement sent on it would fail with an unknown outcome.
func (n *Node[C]) Acquire(ctx context.Context, k Key) (C, error) {
	var zero C
	start := time.Now()
	defer func() { n.waits.observe(time.Since(start)) }()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AcquireTimeout.D())
	defer cancel()
	for {
		c, ok, wake, err := n.idleFor(k)
		if err != nil {
			return zero, err
		}
		if ok {
			return c, nil
		}
		select {
		case n.slots <- struct{}{}:
		default:
			n.evictOne()
			select {
			case n.slots <- struct{}{}:
			case <-wake:
				continue // a connection came back: look at the idle ones again
			case <-ctx.Done():
				return zero, ErrTimeout
			}
		}
		break
	}
	dctx, dcancel := context.WithTimeout(ctx, n.cfg.ConnectTimeout.D())
	defer dcancel()
	c, err := n.dial(dctx, k)
	if err != nil {
		<-n.slots
		return zero, err
	}
	n.mu.Lock()
	n.live[c] = n.now()
	n.mu.Unlock()
	return c, nil
}

// idleFor takes a live idle connection of k. Without one it returns the channel that is closed
// when a connection is next released to the idle list.
func (n *Node[C]) idleFor(k Key) (c C, ok bool, wake <-chan struct{}, err error) {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return c, false, nil, ErrClosed
		}
		l := n.idle[k]
		if len(l) == 0 {
			if n.wake == nil {
				n.wake = make(chan struct{})
			}
			wake = n.wake
			n.mu.Unlock()
			return c, false, wake, nil
		}
		c = l[len(l)-1].c
		n.idle[k] = l[:len(l)-1]
		old := n.expiredLocked(c, n.now())
		n.mu.Unlock()
		if nc := c.NetConn(); !old && (nc == nil || !peerClosed(nc)) {
			return c, true, nil, nil
		}
		n.discard(c)
	}
}

// expiredLocked reports whether c has outlived the server lifetime at now.
func (n *Node[C]) expiredLocked(c C, now time.Time) bool {
	life := n.cfg.ServerLifetime.D()
	opened, ok := n.live[c]
	return life > 0 && ok && now.Sub(opened) >= life
}

// discard closes a connection that was open (idle or handed out) and frees its slot.
func (n *Node[C]) discard(c C) {
	c.Close()
	n.mu.Lock()
	delete(n.live, c)
	n.mu.Unlock()
	<-n.slots
}

// takeIdle removes and returns every idle connection.
func (n *Node[C]) takeIdle() map[Key][]idleConn[C] {
	n.mu.Lock()
	defer n.mu.Unlock()
	idle := n.idle
	n.idle = map[Key][]idleConn[C]{}
	return idle
}

// evictOne closes one idle connection (of any key) to make room.
func (n *Node[C]) evictOne() {
	n.mu.Lock()
	var victim C
	found := false
	for k, l := range n.idle {
		if len(l) > 0 {
			victim, found = l[0].c, true
			n.idle[k] = l[1:]
			break
		}
	}
	n.mu.Unlock()
	if found {
		n.discard(victim)
	}
}

// Release gives c (acquired for k) back. It is reset and kept when reusable, else closed.
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
	if !reusable || n.closed {
		n.mu.Unlock()
		n.discard(c)
		return
	}
	n.idle[k] = append(n.idle[k], idleConn[C]{c: c, since: n.now()})
	if n.wake != nil {
		close(n.wake) // waiters look at the idle list again
		n.wake = nil
	}
	n.mu.Unlock()
}

// Reap closes connections idle for longer than the idle timeout, or older than the server
// lifetime.
func (n *Node[C]) Reap(now time.Time) {
	var old []C
	n.mu.Lock()
	for k, l := range n.idle {
		keep := l[:0]
		for _, ic := range l {
			if now.Sub(ic.since) > n.cfg.IdleTimeout.D() || n.expiredLocked(ic.c, now) {
				old = append(old, ic.c)
			} else {
				keep = append(keep, ic)
			}
		}
		n.idle[k] = keep
	}
	n.mu.Unlock()
	for _, c := range old {
		n.discard(c)
	}
}

// CloseAll closes every idle connection; connections released later are closed too.
func (n *Node[C]) CloseAll() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	for _, l := range n.takeIdle() {
		for _, ic := range l {
			n.discard(ic.c)
		}
	}
}

// DropIdle closes every idle connection of the node and returns how many it closed; connections
// handed out are left alone. Used when one of the node's connections was lost mid-statement: the
// server may be going down, and its other connections die one by one over the next tens of
// milliseconds (a PostgreSQL backend notices its postmaster's death only at its next wait), each
// of them costing whichever session takes it next another error. A fresh dial either works or
// fails before anything was sent, which the failover buffer can hold.
func (n *Node[C]) DropIdle() int {
	closed := 0
	for _, l := range n.takeIdle() {
		for _, ic := range l {
			n.discard(ic.c)
			closed++
		}
	}
	return closed
}

// Cut closes every connection of the node: idle ones at once, and the sockets of those handed
// out, so that their owners see a broken connection (and release it) — a statement the node
// answers late never reaches its client as a success. The pool stays usable. Cut returns how
// many connections it closed. Used when the node stops being the primary (DESIGN §3 step 2).
func (n *Node[C]) Cut() int {
	closed := n.DropIdle()
	n.mu.Lock()
	socks := make([]net.Conn, 0, len(n.live))
	for c := range n.live {
		if nc := c.NetConn(); nc != nil {
			socks = append(socks, nc)
		}
	}
	n.mu.Unlock()
	for _, nc := range socks {
		nc.Close() // safe from any goroutine; the owner's next read or write fails
	}
	return closed + len(socks)
}

// Stats reports open and idle connection counts.
func (n *Node[C]) Stats() (open, idle int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.idle {
		idle += len(l)
	}
	return len(n.slots), idle
}
