package pool

import (
	"net"
	"time"
)

// Reap closes connections idle for longer than the idle timeout, or older than the server
// lifetime.
func (n *Node[C]) Reap(now time.Time) {
	var old []C
	n.mu.Lock()
	for _, kp := range n.keys {
		keep := kp.idle[:0]
		for _, ic := range kp.idle {
			if now.Sub(ic.since) > n.cfg.IdleTimeout.D() || n.expiredLocked(ic.c, now) {
				old = append(old, ic.c)
			} else {
				keep = append(keep, ic)
			}
		}
		clear(kp.idle[len(keep):])
		kp.idle = keep
	}
	for _, c := range old {
		n.forgetLocked(c)
	}
	ds := n.grantRoomLocked(&old)
	n.mu.Unlock()
	closeConns(old)
	deliver(ds)
}

// dropIdle forgets every idle connection and returns them for the caller to close, with the
// grants of the room they leave.
func (n *Node[C]) dropIdleLocked() ([]C, []delivery[C]) {
	var cs []C
	for _, kp := range n.keys {
		for _, ic := range kp.idle {
			cs = append(cs, ic.c)
		}
		kp.idle = nil
	}
	for _, c := range cs {
		n.forgetLocked(c)
	}
	return cs, n.grantRoomLocked(&cs)
}

// CloseAll closes every idle connection and fails every queued Acquire with ErrClosed;
// connections released later are closed too, and later Acquires fail.
func (n *Node[C]) CloseAll() {
	n.mu.Lock()
	n.closed = true
	var ds []delivery[C]
	for kp := range n.waiting {
		for w := kp.q.pop(); w != nil; w = kp.q.pop() {
			ds = append(ds, delivery[C]{w, grant[C]{err: ErrClosed}})
		}
		n.dequeuedLocked(kp)
	}
	cs, _ := n.dropIdleLocked() // nobody is queued: no grants
	n.mu.Unlock()
	closeConns(cs)
	deliver(ds)
}

// DropIdle closes every idle connection of the node and returns how many it closed; connections
// handed out are left alone. Used when one of the node's connections was lost mid-statement: the
// server may be going down, and its other connections die one by one over the next tens of
// milliseconds (a PostgreSQL backend notices its postmaster's death only at its next wait), each
// of them costing whichever session takes it next another error. A fresh dial either works or
// fails before anything was sent, which the failover buffer can hold.
func (n *Node[C]) DropIdle() int {
	n.mu.Lock()
	cs, ds := n.dropIdleLocked()
	closed := len(cs) // grants evict nothing: no idle connection is left
	n.mu.Unlock()
	closeConns(cs)
	deliver(ds)
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

// Stats reports open (including being dialed) and idle connection counts.
func (n *Node[C]) Stats() (open, idle int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, kp := range n.keys {
		idle += len(kp.idle)
	}
	return n.open, idle
}

// Queued reports how many Acquire calls are waiting for a connection.
func (n *Node[C]) Queued() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	q := 0
	for kp := range n.waiting {
		q += kp.q.n
	}
	return q
}
