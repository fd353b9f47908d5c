package netio

import (
	"net"
	"sync"
)

// Idler holds idle client connections without a goroutine each. A session that has nothing to
// do but wait for its client's next message parks its connection here and lets its goroutine
// end (its stack and read buffer go back to the runtime); when the client sends something,
// closes the connection, or another part of the server must wake the session (a shutdown, a
// termination), resume runs on a new goroutine. One epoll instance and one goroutine serve every
// parked connection of the process; it starts with the first Park.
//
// The Go runtime's netpoller keeps its own registration of the socket meanwhile; the idler's
// epoll set is a second, one-shot watch on the same socket.
type Idler struct {
	mu     sync.Mutex
	parked map[int]parked // by file descriptor
	start  sync.Once
	poll   *poller // nil: parking is not available (not Linux, or epoll failed)
}

type parked struct {
	c      *Conn
	resume func()
}

// Park registers c and returns true: resume will run exactly once, on a new goroutine, when c
// becomes readable (data, EOF or an error) or Wake(c) is called. False when c cannot be
// parked (not a *Conn, or parking is unavailable): the caller keeps waiting on its goroutine.
// The caller must not touch c after a successful Park until resume runs.
func (i *Idler) Park(nc net.Conn, resume func()) bool {
	c, ok := nc.(*Conn)
	if !ok || c == nil {
		return false
	}
	if !i.init() {
		return false
	}
	fd := c.fd()
	if fd < 0 {
		return false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, dup := i.parked[fd]; dup {
		return false
	}
	if !i.poll.add(fd) {
		return false
	}
	i.parked[fd] = parked{c: c, resume: resume}
	return true
}

// Wake resumes c's session at once if c is parked, and reports whether it was.
func (i *Idler) Wake(nc net.Conn) bool {
	c, ok := nc.(*Conn)
	if !ok || c == nil || !i.init() {
		return false
	}
	fd := c.fd()
	if fd < 0 {
		return false
	}
	return i.take(fd, c)
}

// init starts the poller once; false when parking is unavailable.
func (i *Idler) init() bool {
	i.start.Do(func() {
		i.parked = map[int]parked{}
		i.poll = newPoller(i.fire)
	})
	return i.poll != nil
}

// Parked reports how many connections are parked now.
func (i *Idler) Parked() int {
	if !i.init() {
		return 0
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.parked)
}

// fire is the poller's callback for a readable (or closed) parked socket.
func (i *Idler) fire(fd int) { i.take(fd, nil) }

// take unparks fd (when c is non-nil, only if fd is c's) and runs its resume on a new goroutine.
// The watch is removed under the lock, so a session that resumes and parks again at once is
// never unregistered by a late removal of its previous watch.
func (i *Idler) take(fd int, c *Conn) bool {
	i.mu.Lock()
	p, ok := i.parked[fd]
	if ok && c != nil && p.c != c {
		ok = false
	}
	if ok {
		delete(i.parked, fd)
		i.poll.del(fd)
	}
	i.mu.Unlock()
	if ok {
		go p.resume()
	}
	return ok
}

// fd returns the connection's file descriptor (-1 when closed).
func (c *Conn) fd() int {
	fd := -1
	if err := c.rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1
	}
	return fd
}
