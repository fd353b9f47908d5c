package myproxy

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/proxy/netio"
)

// Parking, as in pgproxy (park.go there). A client connection costs a goroutine (whose stack
// grew while it authenticated and ran statements) and its read and write buffers for as long
// as it stays connected. A client idle for limits.park_idle_after, with nothing outstanding,
// gives all three back: its session parks its socket in the server's netio.Idler and the
// goroutine ends. The client's next command (or its disconnect, a KILL of its thread id or a
// shutdown waking the session) resumes the session on a new goroutine with pooled buffers.
// Active clients never park: the sweep only asks sessions that read nothing for a whole
// interval.
//
// A session waiting for its client's next command with nothing outstanding is parkWaiting;
// the sweep moves it to parkKicked (under parkMu) and ends the wait with a read deadline in
// the past. The wait is a Peek of the next packet's header, which consumes nothing: a deadline
// that ends it never leaves half a packet read. The session takes the state back to parkBusy
// once the header is there, before it reads the packet, so a late kick cannot end a read in the
// middle of a command.
const (
	parkBusy int32 = iota
	parkWaiting
	parkKicked
)

// readerPool and writerPool hold the client buffers of parked sessions.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientReadBuffer) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, clientWriteBuffer) }}
)

// Sizes of a client's buffers (packets larger than the read buffer are read through the
// PacketReader's scratch buffer).
const (
	clientReadBuffer  = 4 << 10
	clientWriteBuffer = 16 << 10
)

// parkSweep asks sessions idle for a whole interval to park (netio.Sweep).
func (s *Server) parkSweep() {
	defer s.wg.Done()
	netio.Sweep(s.stop, s.config().Limits.ParkIdleAfter.D(), func() bool { return s.config().Limits.Parking() }, func() (asked int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for ss := range s.sessions {
			act := ss.act.Load()
			if act == ss.seenAct && ss.kick() {
				asked++
			}
			ss.seenAct = act
		}
		return asked
	})
}

// kick ends the session's wait for its client when it waits with nothing outstanding, so
// that it parks; true when it did.
func (s *session) kick() bool {
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if !s.parkState.CompareAndSwap(parkWaiting, parkKicked) {
		return false
	}
	s.client.SetReadDeadline(time.Now())
	return true
}

// awaitCommand waits until the header of the client's next packet is buffered (nothing is
// consumed). kicked reports that the parking sweep ended or tried to end the wait: the
// returned error is then a timeout when the session should try to park, and the client's read
// deadline is clear otherwise.
func (s *session) awaitCommand() (kicked bool, err error) {
	idle := !s.inTx && s.status&mywire.StatusInTrans == 0
	if idle {
		s.parkState.Store(parkWaiting)
	}
	_, err = s.br.Peek(4)
	s.act.Add(1)
	if !idle {
		return false, err
	}
	if s.parkState.Swap(parkBusy) != parkKicked {
		return false, err
	}
	// The sweep holds parkMu while it sets the deadline: once it is released the deadline is
	// set and clearing it is final.
	s.parkMu.Lock()
	s.parkMu.Unlock()
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return true, err // park clears the deadline
	}
	s.client.SetReadDeadline(time.Time{})
	return true, err
}

// parkable reports whether nothing but the client's socket needs watching: no transaction
// (XA included), no cursor or long data waiting for a later command, nothing buffered either
// way, not TLS (decrypted bytes may wait inside the TLS layer where the idler cannot see
// them), not closing.
func (s *session) parkable() bool {
	if s.inTx || s.status&mywire.StatusInTrans != 0 || s.xa || s.tls || s.txConn != nil ||
		s.closing.Load() || s.srv.draining.Load() {
		return false
	}
	if _, ok := s.client.(*netio.Conn); !ok {
		return false
	}
	if s.br == nil || s.br.Buffered() != 0 || s.w == nil || s.w.Buffered() != 0 {
		return false
	}
	for _, st := range s.stmts {
		if st.cursor != nil || st.longData != nil {
			return false
		}
	}
	return true
}

// park parks the session (see above); false when it cannot park now and keeps its goroutine.
func (s *session) park() bool {
	s.client.SetReadDeadline(time.Time{})
	if !s.parkable() {
		return false
	}
	// Everything the session gives back is given back before Park: once parked, the session
	// may resume on another goroutine at any moment.
	s.giveBack()
	// The goroutine that resumes the session ends it: it stays counted meanwhile (the accept
	// loop's count of sessions and the server's wait group drop when this one returns).
	s.srv.wg.Add(1)
	s.srv.metrics.Sessions.Add(1)
	if !s.srv.idler.Park(s.client, s.resume) {
		s.srv.wg.Done()
		s.srv.metrics.Sessions.Add(-1)
		s.takeBack()
		return false
	}
	// A KILL or a shutdown that came while the session was parking found it not yet parked
	// (its wake-up did nothing) but set its flag first: wake it now.
	if s.closing.Load() || s.srv.draining.Load() {
		s.srv.idler.Wake(s.client)
	}
	return true
}

// giveBack returns the session's buffers to their pools and drops what the next command makes
// again anyway.
func (s *session) giveBack() {
	s.br.Reset(nil)
	readerPool.Put(s.br)
	s.w.Reset(nil)
	writerPool.Put(s.w)
	s.br, s.r, s.w = nil, nil, nil
	s.scratch, s.held = nil, nil
	if len(s.conns) == 0 {
		s.conns = nil
	}
	if len(s.stmts) == 0 {
		s.stmts = nil
	}
}

// takeBack takes back what giveBack gave up.
func (s *session) takeBack() {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(s.client)
	w := writerPool.Get().(*bufio.Writer)
	w.Reset(s.client)
	s.br, s.w = br, w
	s.r = mywire.NewPacketReader(br, s.maxPacket)
	if s.conns == nil {
		s.conns = map[*nodePool]*backend{}
	}
	if s.stmts == nil {
		s.stmts = map[uint32]*stmt{}
	}
}

// resume continues a parked session on a new goroutine.
func (s *session) resume() {
	defer s.srv.wg.Done()
	defer s.srv.metrics.Sessions.Add(-1)
	s.takeBack()
	s.run()
}

// interrupt wakes the session's client loop: a parked session resumes, and a blocked read
// ends with a timeout (the loop then looks at why: closing, draining).
func (s *session) interrupt() {
	s.client.SetReadDeadline(time.Now())
	s.srv.idler.Wake(s.client)
}

// ParkedSessions reports how many client sessions are parked now.
func (s *Server) ParkedSessions() int { return s.idler.Parked() }
