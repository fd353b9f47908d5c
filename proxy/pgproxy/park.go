package pgproxy

import (
	"bufio"
	"net"
	"sync"
	"time"

	"github.com/baton-proxy/baton/proxy/netio"
)

// Parking. A client connection costs a goroutine (whose stack grew while it authenticated and
// ran statements: 8 KiB and more) and a read buffer for as long as it stays connected. A client
// that has been idle for limits.park_idle_after gives both back: its session parks its socket
// in the server's netio.Idler and the goroutine ends. The client's next message (or its
// disconnect, or a shutdown or pg_terminate_backend waking the session) resumes the session on
// a new goroutine with a pooled buffer. Active clients never park: the parking sweep only asks
// sessions that read nothing for a whole sweep interval.

// readerPool holds the client read buffers of parked sessions.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientReadBuffer) }}

// clientReadBuffer is the size of a client's read buffer (frames larger than it are read
// through the MsgReader's scratch buffer).
const clientReadBuffer = 4 << 10

// parkSweep asks sessions idle for a whole interval to park (netio.Sweep).
func (s *Server) parkSweep() {
	defer s.wg.Done()
	netio.Sweep(s.stop, s.config().Limits.ParkIdleAfter.D(), func() bool { return s.config().Limits.Parking() }, func() (asked int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ss := range s.sessions {
			act := ss.act.Load()
			if ss.waiting.Load() && act == ss.seenAct && !ss.kick.Load() {
				ss.kick.Store(true)
				ss.client.SetReadDeadline(time.Now()) // the read ends; the loop parks (loop)
				asked++
			}
			ss.seenAct = act
		}
		return asked
	})
}

// parkable reports whether nothing but the client's socket needs watching: no transaction, no
// statement or extended-protocol group in progress, no LISTEN, nothing buffered. (outstanding
// first: the relay owns the session's fields while a unit is.)
func (s *session) parkable() bool {
	return !s.outstanding() && s.txStatusNow() == 'I' && s.openUnit == nil && len(s.group) == 0 &&
		!s.skipSync && s.listen == nil && len(s.listens) == 0 && s.crd.Reader() != nil && socketOf(s.client) != nil &&
		s.crd.Reader().Buffered() == 0 && !s.closing.Load() && !s.terminated.Load() && !s.srv.draining.Load()
}

// park parks the session (see above); false when it cannot park now and keeps its goroutine.
func (s *session) park() bool {
	if !s.parkable() {
		return false
	}
	if s.queue != nil {
		// The relay goroutine idles on the queue: end it (push starts a new one when needed).
		close(s.queue)
		<-s.relayDone
		s.queue = nil
	}
	s.client.SetReadDeadline(time.Time{})
	s.deadline = false
	// Everything the session gives back is given back before Park: once parked, the session
	// may resume on another goroutine at any moment. The read buffer goes back to the pool, and
	// what the next statement makes again anyway goes: the last unit, empty maps.
	br := s.crd.Reader()
	s.crd.SetReader(nil)
	br.Reset(nil)
	readerPool.Put(br)
	s.last = nil
	if len(s.conns) == 0 {
		s.conns = nil
	}
	if len(s.stmts) == 0 {
		s.stmts = nil
	}
	// The goroutine that resumes the session ends it: it stays counted meanwhile (the
	// accept loop's count of sessions and the server's wait group drop when this one returns).
	s.srv.wg.Add(1)
	s.srv.metrics.Sessions.Add(1)
	if !s.srv.idler.Park(socketOf(s.client), s.resume) {
		s.srv.wg.Done()
		s.srv.metrics.Sessions.Add(-1)
		s.unpark()
		return false
	}
	// A shutdown or termination that came while the session was parking found it not yet
	// parked (its wake-up did nothing) but set its flag first: wake it now.
	if s.terminated.Load() || s.srv.draining.Load() {
		s.srv.idler.Wake(socketOf(s.client))
	}
	return true
}

// unpark takes back what park gave up.
func (s *session) unpark() {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(s.client)
	s.crd.SetReader(br)
	if s.conns == nil {
		s.conns = map[*nodePool]*backend{}
	}
	if s.stmts == nil {
		s.stmts = map[string]*stmt{}
	}
}

// resume continues a parked session on a new goroutine.
func (s *session) resume() {
	defer s.srv.wg.Done()
	defer s.srv.metrics.Sessions.Add(-1)
	s.unpark()
	s.run()
}

// interrupt wakes the session's client loop: a parked session resumes, and a blocked read ends
// with a timeout (the loop then looks at why: terminated, draining).
func (s *session) interrupt() {
	s.client.SetReadDeadline(time.Now())
	s.srv.idler.Wake(socketOf(s.client))
}

// socketOf returns the client's socket when nothing between it and the session buffers data
// (the startup's one-byte prefix consumed); nil otherwise, and for TLS clients, whose
// decrypted bytes may wait in the TLS layer where the idler cannot see them: those never park.
func socketOf(c net.Conn) net.Conn {
	switch c := c.(type) {
	case *netio.Conn:
		return c
	case *prefixConn:
		if nc, ok := c.Conn.(*netio.Conn); ok && len(c.prefix) == 0 {
			return nc
		}
	}
	return nil
}

// ParkedSessions reports how many client sessions are parked now.
func (s *Server) ParkedSessions() int { return s.idler.Parked() }
