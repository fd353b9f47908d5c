package pool

import "time"

// waiter is one Acquire queued for a connection of its key. It is in its key's queue until the
// pool grants it something (a returned connection, room to dial one, or an error), which the pool
// sends on ch after it has unlocked; or until it gives up and takes itself out. Fields other
// than ch are guarded by Node.mu.
type waiter[C Conn] struct {
	kp      *keyPool[C]
	since   time.Time
	reserve bool // queued for pool.reserve_timeout: may open a connection above pool.size
	queued  bool // in its key's queue

	prev, next *waiter[C]
	ch         chan grant[C] // capacity 1: the one grant never blocks its sender
}

// grant is what a queued waiter receives: a connection handed over by a session that returned
// it, room to dial one (counted already), or the pool's error.
type grant[C Conn] struct {
	c    C
	dial bool
	err  error
}

// delivery is a grant to send once the pool's lock is released.
type delivery[C Conn] struct {
	w *waiter[C]
	g grant[C]
}

// waitQueue is a first-come, first-served list of waiters: O(1) push, pop and removal from the
// middle (a waiter that timed out). The zero value is an empty queue.
type waitQueue[C Conn] struct {
	head, tail *waiter[C]
	n          int
}

func (q *waitQueue[C]) push(w *waiter[C]) {
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
	w.queued = true
}

// remove takes w out of the queue; w must be in it.
func (q *waitQueue[C]) remove(w *waiter[C]) {
	if !w.queued {
		panic("BUG: pool: removing a waiter that is not queued")
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	w.queued = false
	q.n--
}

// pop removes and returns the oldest waiter, or nil.
func (q *waitQueue[C]) pop() *waiter[C] {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}
