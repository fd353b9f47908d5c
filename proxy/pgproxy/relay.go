package pgproxy

import (
	"errors"
	"net"
	"strings"
	"time"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/router"
)

// SQLSTATEs the relay reacts to.
const (
	stateReadOnlyTx = "25006" // read_only_sql_transaction: a write reached a replica
)

// connectionLost: the SQLSTATEs of a FATAL that mean the server (or this backend) is going
// away, rather than that the client's own request was refused. Only a FATAL (or PANIC) ends a
// connection: an ERROR with one of these codes (e.g. 08P01 for a malformed Bind) leaves it usable.
func connectionLost(code string) bool {
	return code == "57P01" || code == "57P02" || code == "57P03" || code == "57P05" || strings.HasPrefix(code, "08")
}

// endWithServerFatal forwards a backend's FATAL to the client and ends the client's session, as
// the server ends a direct connection. going: the server is shutting down or terminated the
// backend, so its idle siblings are likely dead too.
func (s *session) endWithServerFatal(be *backend, fatal []byte, going bool) {
	s.drop(be)
	if going {
		be.node.DropIdle()
	}
	s.cw.Write(fatal)
	s.flush()
	s.lostOpen.Store(be)
	s.clientGone()
}

// resendable reports whether a replica's error, held back from the client, means the unit should
// run on the primary instead: the replica refused a write (a misroute), or its catalog lags the
// primary's (a table, function or schema created a moment ago).
func resendable(code string) (misroute, lag bool) {
	switch code {
	case stateReadOnlyTx:
		return true, false
	case "42P01", "42883", "3F000", "42704": // undefined table, function, schema, object
		return false, true
	}
	return false, false
}

// relay forwards backend responses to the client, one unit at a time, in order.
func (s *session) relay() {
	// listening and idleTx (the transaction status) are read from the session while a unit is
	// outstanding (the relay owns the session's fields then): once it closes the unit's done,
	// the client loop may run the next unit itself and change them.
	listening := false
	idleTx := byte('I')
	for {
		var u *unit
		var ok bool
		if listening {
			u, ok = s.idleListen(idleTx)
		} else {
			u, ok = s.idleWait(idleTx)
		}
		if !ok {
			return
		}
		s.process(u)
		s.active.Store(nil)
		if u.be != nil {
			s.checkIn()
		}
		listening = s.listen != nil && !s.listen.broken
		idleTx = s.txStatusNow()
		if len(s.listens) > 0 {
			s.deliverNotes(idleTx) // what arrived during the unit, once it is over (notify.go)
		}
		close(u.done)
	}
}

// nextUnit waits for the next unit; false when the client loop has closed the queue.
func (s *session) nextUnit() (*unit, bool) {
	u, ok := <-s.queue
	return u, ok
}

// idleWait waits for the next unit while delivering the notifications the session's listeners
// queue in between (tx: the session's transaction status; inside a transaction block they
// wait for its end, as on the server).
func (s *session) idleWait(tx byte) (*unit, bool) {
	for {
		select {
		case u, ok := <-s.queue:
			return u, ok
		case <-s.notes.wake:
			s.deliverNotes(tx)
		}
	}
}

// idleListen waits for the next unit while forwarding notifications that arrive on the LISTEN
// connection in between, and those the session's listeners queue (tx as for idleWait).
func (s *session) idleListen(tx byte) (*unit, bool) {
	be := s.listen
	for {
		select {
		case u, ok := <-s.queue:
			return u, ok
		case <-s.notes.wake:
			s.deliverNotes(tx)
		default:
		}
		be.conn.SetReadDeadline(time.Time{})
		s.idleConn.Store(be)
		select {
		case u, ok := <-s.queue:
			s.idleConn.Store(nil)
			return u, ok
		default:
		}
		if len(s.notes.wake) > 0 {
			s.idleConn.Store(nil)
			continue
		}
		_, err := be.rd.Peek1()
		s.idleConn.Store(nil)
		be.conn.SetReadDeadline(time.Time{})
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // woken by push
			}
			if s.closing.Load() {
				return s.nextUnit()
			}
			// The LISTEN connection died: the session's subscriptions (and notifications
			// sent meanwhile) are gone, which a client must learn, as on a direct connection.
			s.listenLost(be, pgwire.AppendError(nil, pgwire.SevFatal, "08006", "baton: the server closed the connection that held this session's LISTEN"))
			return s.nextUnit()
		}
		select {
		case u, ok := <-s.queue:
			return u, ok // the bytes are this unit's response (or precede it)
		default:
		}
		f, err := be.rd.Next()
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			// A wake-up (push, or the listener hub's) that landed after the peek. Next
			// consumes nothing of a frame that fits its buffer (every notification, notice and
			// parameter status does) until it is whole: read it again.
			continue
		}
		if err != nil {
			s.listenLost(be, pgwire.AppendError(nil, pgwire.SevFatal, "08006", "baton: the server closed the connection that held this session's LISTEN"))
			return s.nextUnit()
		}
		switch f[0] {
		case 'E':
			if pgwire.ErrorFatal(pgwire.Body(f)) { // terminated: the server's own FATAL
				s.listenLost(be, append([]byte(nil), f...))
				return s.nextUnit()
			}
		case 'A', 'N', 'S': // NotificationResponse, NoticeResponse, ParameterStatus
			if f[0] == 'A' && s.viaHub(f) {
				continue // the hub delivers it (notify.go)
			}
			s.cw.Write(f)
			if be.rd.Buffered() == 0 {
				if s.cw.Flush() != nil {
					s.client.Close()
				}
			}
		}
	}
}

// listenLost ends the session whose LISTEN connection died while it idled, with fatal. It runs on
// the idle relay and touches no session field (the client loop may be reading them); the client
// loop's cleanup releases the broken connection.
func (s *session) listenLost(be *backend, fatal []byte) {
	be.conn.Close() // (broken is set by the client loop's cleanup; the socket says enough)
	s.cw.Write(fatal)
	s.flush()
	s.clientGone()
}

// process relays the responses of one unit.
func (s *session) process(u *unit) {
	if u.synthetic != nil {
		s.cw.Write(u.synthetic)
		if u.resume {
			s.notes.pause(false) // the LISTEN's answer is out: notifications may follow
		}
		s.flush()
		return
	}
	startTx := s.txStatusNow()
	for attempt := 0; ; attempt++ {
		retry := s.relayUnit(u, startTx)
		if !retry {
			return
		}
		// Resend on the primary (misroute) or another node (the replica failed).
		snap := s.srv.live.Load()
		p := snap.PrimaryNode()
		if p == nil || attempt > 2 {
			s.cw.Write(pgwire.AppendError(nil, pgwire.SevError, "57P03", "baton: no node could serve the statement; retry later"))
			s.cw.Write(pgwire.AppendReady(nil, s.txStatusNow()))
			s.flush()
			return
		}
		be, err := s.acquire(s.srv.node(p.Name))
		if err != nil {
			s.cw.Write(pgwire.AppendError(nil, pgwire.SevError, "57P03", "baton: "+err.Error()))
			s.cw.Write(pgwire.AppendReady(nil, s.txStatusNow()))
			s.flush()
			return
		}
		u.retryable = false
		u.class.Route = router.Primary
		out := s.prepare(u, be)
		if u.refused != nil {
			s.cw.Write(pgwire.AppendReady(u.refused, s.txStatusNow()))
			s.flush()
			return
		}
		s.start(u, be, out)
	}
}

func (s *session) flush() {
	if err := s.cw.Flush(); err != nil {
		s.clientGone()
	}
}

func (s *session) clientGone() {
	if !s.closing.Swap(true) {
		s.client.Close()
	}
}

// holdable: response frames that may precede a misroute error; a replica read's responses are
// held back until a frame that proves the statement ran (DataRow, CommandComplete, …).
func holdable(t byte) bool {
	switch t {
	case '1', '2', 't', 'T', 'n', 'N', 'S':
		return true
	}
	return false
}

// relayUnit forwards one unit's responses from u.be. It returns true when the unit must be sent
// again elsewhere (nothing of it reached the client).
func (s *session) relayUnit(u *unit, startTx byte) (retry bool) {
	be := u.be
	replays, swallow := u.replays, u.swallow
	shapes := shapeRecorder{names: describedStatements(u.frames), be: be}
	hold := u.retryable
	var held []byte
	var failed, misrouted, lagged bool
	var tag string
	for {
		f, err := be.rd.Next()
		if err != nil {
			return s.lose(u, be, hold)
		}
		typ := f[0]
		if replays > 0 {
			switch typ {
			case 'Z':
				if replays--; replays == 0 {
					s.running(be)
				}
			case 'E':
				s.cw.Write(f) // a replayed SET failed on this node: the client must know
			}
			continue
		}
		if swallow > 0 && (typ == '1' || typ == '3') {
			swallow--
			continue
		}
		if len(shapes.names) > 0 || shapes.cur != nil {
			shapes.see(s, f)
		}
		switch typ {
		case 'E':
			failed = true
			code := pgwire.ErrorCode(pgwire.Body(f))
			if pgwire.ErrorFatal(pgwire.Body(f)) {
				// The server ends this connection; no ReadyForQuery follows. A replica read
				// nothing of which reached the client moves to another node when the replica
				// is going away; anything else ends the client's session with the server's
				// own FATAL, as on a direct connection (pg_terminate_backend, a fence).
				if hold && connectionLost(code) && !s.terminated.Load() {
					return s.lose(u, be, hold)
				}
				s.srv.metrics.errors.Add(1)
				s.cw.Write(held)
				s.endWithServerFatal(be, f, connectionLost(code))
				return false
			}
			if hold {
				if m, lag := resendable(code); m || lag {
					misrouted, lagged = m, lag
					continue // drain to ReadyForQuery, then resend on the primary
				}
			}
		case 'C':
			tag = commandTag(f)
		case 'Z':
			if misrouted || lagged {
				if misrouted {
					s.srv.metrics.misroutes.Add(1)
				} else {
					s.srv.metrics.retries.Add(1)
				}
				return true
			}
			if len(held) > 0 {
				s.cw.Write(held)
			}
			// The session's state (transaction, pins) is up to date before the client can
			// act on the ReadyForQuery.
			s.finish(u, f[5], startTx, failed, tag)
			if len(s.listens) > 0 {
				s.notifyBarrier(u, f[5]) // its own notifications come before its ReadyForQuery
			}
			lsnProbe := u.lsnProbe
			if status := f[5]; status == 'I' && s.pins&probedPins != 0 && mayDropState(u.frames) {
				// Pins that ended with this unit end before the client hears it is done.
				f = pgwire.AppendReady(nil, status) // the probes read past f's buffer
				if lsnProbe {
					lsnProbe = false
					s.readProbedLSN(u, be) // its answer comes first
				}
				if s.recheckPins(be) {
					s.publishPins()
				}
			}
			if u.impliedSync.Load() {
				// baton's own Sync in front of a Query that followed the group: the client
				// did not send it and gets no ReadyForQuery for it.
				u.failed = failed
			} else {
				// Notifications go out when the server would send them: before a
				// ReadyForQuery outside a transaction block (notify.go).
				if len(s.listens) > 0 {
					s.writeNotes(f[5])
				}
				s.cw.Write(f)
			}
			s.flush()
			if lsnProbe {
				s.readProbedLSN(u, be)
			}
			return false
		}
		if misrouted || lagged {
			continue
		}
		if typ == 'A' && s.viaHub(f) {
			continue // a pinned LISTEN connection's copy: the hub delivers it (notify.go)
		}
		if hold {
			if holdable(typ) {
				held = append(held, f...)
				continue
			}
			hold = false
			s.cw.Write(held)
			held = nil
		}
		s.cw.Write(f)
		if be.rd.Buffered() == 0 {
			s.flush()
		}
	}
}

// readProbedLSN reads the WAL position a read_your_writes unit asked for after its statement.
func (s *session) readProbedLSN(u *unit, be *backend) {
	s.active.Store(nil) // the client's statement is over: cancel nothing of baton's
	if u.class.CopyIn {
		// A Query cannot follow COPY FROM STDIN before its data: ask now.
		s.send(be, appendLSNProbe(nil))
	}
	s.readLSN(be)
}

// lose drops a connection that failed mid-unit. It returns true (resend the unit elsewhere)
// when nothing of the unit reached the client yet; otherwise it tells the client.
func (s *session) lose(u *unit, be *backend, held bool) bool {
	lost := be.node.name
	s.drop(be)
	be.node.DropIdle() // its siblings are likely dying too: dial afresh (pool.Node.DropIdle)
	if held && !s.closing.Load() {
		s.srv.metrics.retries.Add(1)
		return true
	}
	u.failed = true
	s.backendLost(be, lost)
	return false
}

// backendLost tells the client that the node serving its statement went away. It runs on the
// relay goroutine: a group still open on be is closed by the client loop (lostOpen).
func (s *session) backendLost(be *backend, node string) {
	if s.txStatusNow() != 'I' {
		s.cw.Write(pgwire.AppendError(nil, pgwire.SevFatal, "08006", "baton: lost the connection to node "+node+" during a transaction; the transaction was rolled back"))
		s.flush()
		s.clientGone()
		return
	}
	s.cw.Write(pgwire.AppendError(nil, pgwire.SevError, "08006", "baton: lost the connection to node "+node+" while it ran the statement; its outcome is unknown"))
	s.cw.Write(pgwire.AppendReady(nil, 'I'))
	s.flush()
	s.lostOpen.Store(be)
}

// commandTag is the tag of a CommandComplete frame as far as finish needs it: "COMMIT" or "".
// (It runs for every statement: it compares bytes rather than making a string.)
func commandTag(f []byte) string {
	if b := pgwire.Body(f); len(b) == len("COMMIT")+1 && string(b[:len("COMMIT")]) == "COMMIT" {
		return "COMMIT"
	}
	return ""
}

// finish applies a unit's effects on session state once its ReadyForQuery arrived.
func (s *session) finish(u *unit, status, startTx byte, failed bool, tag string) {
	defer s.publishPins()
	s.txStatus = status
	s.trackReadOnlyTx(u, status, startTx)
	if status == 'I' {
		s.txOn.Store(nil)
		s.txConn = nil
		if startTx != 'I' || len(s.pending) > 0 {
			if tag == "COMMIT" {
				s.appendHistory(u.be, s.pending...)
			}
			s.pending = s.pending[:0]
		}
	} else {
		s.txConn = u.be
		s.txOn.Store(u.be.node)
	}
	if failed {
		return
	}
	if u.class.Reason == "ddl" {
		select {
		case s.srv.ddl <- struct{}{}:
		default:
		}
	}
	if u.hist != nil {
		s.noteSessionState(u.hist.sql)
		if status == 'I' && startTx == 'I' {
			s.appendHistory(u.be, *u.hist)
		} else if status != 'I' {
			s.pending = append(s.pending, *u.hist)
		}
	}
	if len(s.listens) > 0 && status == 'I' && startTx == 'I' {
		// UNLISTEN that went to the server (in a text of several statements, or on a
		// session with a pinned LISTEN connection), DISCARD ALL: the hub's subscriptions go too.
		if u.class.Unpin&router.PinListen != 0 {
			s.unlistenAll()
		} else if t, ok := router.PGListenTarget(unitText(u.frames)); ok && t.Unlisten {
			s.unlisten(t)
		}
	}
	if u.class.Unpin != 0 {
		s.pins &^= u.class.Unpin
		if u.class.Unpin&router.PinListen != 0 {
			s.listen = nil
		}
	}
	if s.txPooling && dropsStatements(u.class) {
		clear(u.be.stmts) // DISCARD ALL / DEALLOCATE ALL ran on the server: shared statements too
		clear(u.be.used)
		clear(u.be.shapes)
	}
	if u.class.Unpin&router.PinPrepare != 0 { // DEALLOCATE ALL drops Parse'd statements too
		for name := range s.stmts {
			s.closeElsewhere(u.be, name)
		}
	}
	if u.class.ResetAll {
		if u.class.Unpin != 0 { // DISCARD ALL
			s.pins = 0
			s.listen = nil
			clear(s.stmts)
		}
		// PostgreSQL resets to the values of the startup packet; baton sent those as SETs.
		if s.startup != "" {
			s.history = append(s.history, histEntry{sql: s.startup})
		}
	}
	if u.class.Pin&router.PinListen != 0 {
		s.listen = u.be
	}
}

// appendHistory records session state that be has already run.
func (s *session) appendHistory(be *backend, hs ...histEntry) {
	for _, h := range hs {
		if n := len(s.history); n > s.histBase && s.history[n-1] == h {
			continue // the same statement again changes nothing
		}
		s.history = append(s.history, h)
	}
	be.applied = len(s.history) // be ran them itself
}

// readLSN consumes the answer to the WAL position query that follows a write in
// read_your_writes mode; the client never sees it (but gets the notifications that arrive with
// it).
func (s *session) readLSN(be *backend) {
	notified := false
	defer func() {
		if notified {
			s.flush()
		}
	}()
	for {
		f, err := be.rd.Next()
		if err != nil {
			s.drop(be)
			return
		}
		switch f[0] {
		case 'A':
			// A connection that holds the session's LISTEN sends notifications whenever it is
			// idle, here between the client's ReadyForQuery and the probe's answer.
			if !s.viaHub(f) {
				s.cw.Write(f)
				notified = true
			}
		case 'D':
			// DataRow: int16 column count, int32 length, value.
			if b := pgwire.Body(f); len(b) >= 6 {
				n := int(int32(be32(b[2:6])))
				if n > 0 && 6+n <= len(b) {
					if v := parseLSN(string(b[6 : 6+n])); v > s.lsn {
						s.lsn = v
					}
				}
			}
		case 'Z':
			return
		}
	}
}
