package myproxy

import (
	"errors"
	"fmt"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/router"
)

// unit is one client command on its way to a backend.
type unit struct {
	cmd   []byte // the client's command payload
	class router.Class
	state string   // session state to record for replay when it succeeds
	force *backend // must run on this connection (long data, cursors)
	// build returns the command payload for be (statement ids mapped, types added); it may
	// prepare the statement on be first. A non-nil *mywire.ERR is answered to the client.
	build func(be *backend) ([]byte, *mywire.ERR, error)
	// prepared is called with the PREPARE_OK of a COM_STMT_PREPARE (payload rewritten in place
	// to baton's statement id) and, when the response is complete, done is called.
	onFirst func(be *backend, p []byte) []byte
	onDone  func(be *backend, t *mywire.Tracker)
	t       *mywire.Tracker // the tracker of the last response relayed (set by relay)
	// gtid is the last last_gtid the response's OK packets reported (gtidTracked) — track.go.
	gtid        string
	gtidTracked bool
	retrack     bool  // the statement may set session_track_system_variables (track.go)
	stmt        *stmt // the prepared statement a COM_STMT_* unit names
	// text is a COM_QUERY's statement text ("" until unitText makes it); toks its tokens
	// once lexed (unitTokens).
	text   string
	toks   []sqlTok
	tokOK  bool
	tokSet bool
	// calcFound: a SELECT SQL_CALC_FOUND_ROWS whose FOUND_ROWS() baton learns right after it
	// instead of pinning the session (transaction pooling, txdiag.go).
	calcFound bool
}

// outcome of sending a unit to one backend.
type outcome uint8

const (
	sent        outcome = iota // answered (successfully or not) to the client
	retryOther                 // the replica failed before anything reached the client
	retryOnPrim                // the replica refused (read-only, catalog lag): use the primary
)

// holdLimit bounds how much of a replica's reply is held back (for a possible resend) before it
// is streamed to the client.
const holdLimit = 64 << 10

// exec routes and runs a unit, resending it elsewhere when that is invisible to the client.
func (s *session) exec(u *unit) {
	defer s.publishPins()
	var avoid map[*nodePool]bool // nodes this unit must not use (allocated for the first)
	var hold *buffer.Hold
	if u.force == nil && !s.inTx && router.ReadsLastStatement(u.class) {
		// SHOW WARNINGS, ROW_COUNT() …: the previous statement's node has the answer (the
		// connection holding the session's warnings or error, when a statement that does not
		// clear them ran elsewhere since).
		if s.condConn != nil && !s.condConn.broken {
			u.force = s.condConn
		} else if s.last != nil && !s.last.broken {
			u.force = s.last
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		var be *backend
		var route router.Route
		var err error
		if u.force != nil && !u.force.broken {
			be, route = u.force, router.Primary
			if be.node.name != s.primaryName() {
				route = router.Replica
			}
		} else {
			var np *nodePool
			np, route, err = s.pick(u.class, avoid)
			if err == nil && route == router.Primary && s.gtid != "" {
				// read_your_writes: a replica may catch up with the session's writes in time.
				if avoid == nil {
					avoid = map[*nodePool]bool{} // awaitReplica adds the nodes that failed
				}
				if rb := s.awaitReplica(u.class, avoid); rb != nil {
					be, route = rb, router.Replica
				}
			}
			if err == nil && be == nil {
				be, err = s.acquire(np)
			}
			if err != nil && route == router.Replica && np != nil && !errors.Is(err, pool.ErrTimeout) {
				avoid = avoidNode(avoid, np) // a replica the health checker has not yet seen die
				s.srv.metrics.retries.Add(1)
				continue
			}
		}
		if err == nil && route == router.Primary && u.class.Route == router.Primary && !s.srv.mayWrite() {
			err = buffer.ErrWriteLease
		}
		if err == nil && route == router.Primary && !s.inTx && s.txConn == nil && s.pins == 0 && be.node.name != s.primaryName() {
			// The node stopped being the primary while the connection was being acquired (a
			// dial that finished after the failover's cut): nothing was sent; hold the command
			// for the new primary instead of writing to the fenced one, whose semi-sync would
			// acknowledge without a replica.
			s.drop(be)
			be, err = nil, buffer.ErrNoPrimary
		}
		if err == nil && route == router.Primary {
			s.srv.buf.Seen()
		}
		if err != nil && route == router.Primary && s.mayHold(err) {
			// Nothing was sent: wait in the failover buffer for a (new) primary.
			if hold == nil {
				hold = s.srv.buf.Hold(s.srv.mayWrite)
				defer hold.End()
			}
			if err = hold.Wait(err); err == nil {
				attempt--
				continue
			}
		}
		if err != nil {
			s.srv.metrics.errors.Add(1)
			s.writeErr(s.rseq, errBaton, "HY000", "baton: "+err.Error())
			return
		}
		if u.class.Pin != 0 {
			s.pins |= u.class.Pin // fail closed: pin before we know it worked
		}
		if route == router.Primary {
			s.txOn.Store(be.node) // busy on the primary until the reply says idle (switchover drain)
		}
		retryable := route == router.Replica && !s.inTx && u.class.Tx == router.TxNone && u.force == nil
		wasInTx := s.inTx
		outcome := s.send(u, be, retryable)
		if !s.inTx {
			s.txOn.Store(nil) // the reply (or a command without one) left no transaction open
		}
		switch outcome {
		case sent:
			if !be.broken && !mywire.NoResponse(u.cmd[0]) {
				s.last = be
			}
			if route == router.Replica {
				s.noteDiagnosticVars(u, be)
			}
			if u.retrack {
				s.retrack(be)
			}
			s.srv.metrics.count(route)
			if route == router.Primary {
				s.noteWrite(u, be, wasInTx)
			}
			if route == router.Replica {
				s.replica, s.sticky = be, be.node.name
			}
			return
		case retryOther:
			avoid = avoidNode(avoid, be.node)
			s.srv.metrics.retries.Add(1)
		case retryOnPrim:
			u.class.Route, u.class.Hint = router.Primary, false
		}
	}
	s.writeErr(s.rseq, errBaton, "HY000", "baton: no node could serve the statement; retry later")
}

// avoidNode adds np to avoid, making the map when it is the first.
func avoidNode(avoid map[*nodePool]bool, np *nodePool) map[*nodePool]bool {
	if avoid == nil {
		avoid = map[*nodePool]bool{}
	}
	avoid[np] = true
	return avoid
}

// send replays missing session state on be, sends the unit and relays its response.
func (s *session) send(u *unit, be *backend, hold bool) outcome {
	s.active.Store(be)
	defer s.active.Store(nil)
	s.copyDiagnosticVars(be)
	if err := s.replay(be); err != nil {
		return s.fail(be, hold)
	}
	if err := s.diagPrefix(u, be); err != nil {
		return s.fail(be, hold)
	}
	if u.class.Pin != 0 || s.pins != 0 && be.node.name == s.primaryName() {
		be.dirty = true // it may carry pinned state: reset before another session uses it
	}
	cmd := u.cmd
	if u.build != nil {
		c, e, err := u.build(be)
		if err != nil {
			return s.fail(be, hold)
		}
		if e != nil {
			s.w.Write(mywire.AppendERR(nil, s.rseq, *e, s.caps))
			return sent
		}
		cmd = c
	}
	s.scratch, _ = mywire.AppendPacket(s.scratch[:0], 0, cmd)
	_, err := be.w.Write(s.scratch)
	s.trimScratch()
	if err != nil || be.w.Flush() != nil {
		return s.fail(be, hold)
	}
	if mywire.NoResponse(cmd[0]) {
		if err := be.drain(s.warnReplay(be)); err != nil {
			return s.fail(be, hold)
		}
		return sent
	}
	return s.relay(u, be, hold)
}

// relay forwards one response, holding a replica's reply back until it is proven harmless.
func (s *session) relay(u *unit, be *backend, hold bool) outcome {
	t := mywire.NewTracker(u.cmd[0], be.cc.Caps)
	u.t = t
	seq := s.rseq
	held := s.held[:0]
	defer func() {
		if cap(held) <= 1<<20 {
			s.held = held[:0] // keep a modest buffer for the next reply
		}
	}()
	if err := be.drain(s.warnReplay(be)); err != nil {
		return s.fail(be, hold)
	}
	first := true
	for {
		p, bseq, err := be.cc.R.Next()
		if err != nil {
			return s.fail(be, hold)
		}
		done, err := t.Feed(p)
		if err != nil {
			s.drop(be)
			s.writeErr(seq, errBaton, "HY000", fmt.Sprintf("baton: unexpected reply from node %s: %v", be.node.name, err))
			return sent
		}
		if first && u.onFirst != nil {
			p = u.onFirst(be, p) // after Feed: the tracker must see the server's own ids
		}
		if t.FedOK() {
			if ok := t.OK(); ok.LastInsertID != 0 {
				s.insertID = ok.LastInsertID // LAST_INSERT_ID() of the session (txpool.go)
			}
			p = s.trackedOK(u, be, t, p)
		} else if p[0] == 0xfe && len(p) < 9 && len(p) >= 5 && s.caps&mywire.ClientSessionTrack == 0 {
			p[4] &^= byte(mywire.StatusSessionStateChanged >> 8) // an EOF's status: the flag is about tracking this client did not ask for
		}
		first = false
		if done && p[0] == 0xff && s.inTx && s.status&mywire.StatusInTransReadonly != 0 && be != nil && be.node.name != s.primaryName() {
			// A write in a READ ONLY transaction that baton started on a replica: answer what the
			// primary would have said, not the replica's "server is read-only".
			if e, _ := mywire.DecodeERR(p, s.caps); e.Code == 1290 || e.Code == 1836 {
				p = errPayload(1792, "25006", "Cannot execute statement in a READ ONLY transaction")
			}
		}
		if hold {
			held, seq = mywire.AppendPacket(held, seq, p)
			if len(held) > holdLimit {
				s.w.Write(held)
				held, hold = nil, false
			}
		} else {
			s.scratch, seq = mywire.AppendPacket(s.scratch[:0], seq, p)
			s.w.Write(s.scratch)
			s.trimScratch()
		}
		if name, ok := t.WantsLocalInfile(); ok && !done {
			if hold {
				s.w.Write(held)
				held, hold = nil, false
			}
			var err error
			if seq, err = s.forwardInfile(be, bseq+1, name); err != nil {
				return sent
			}
			continue
		}
		if done {
			break
		}
	}
	be.sawAnswer()
	if hold {
		if e := t.Err(); e != nil {
			switch e.Code {
			case 1290, 1836: // read-only server: a write reached a replica
				s.srv.metrics.misroutes.Add(1)
				return retryOnPrim
			case 1146, 1049, 1305: // unknown table, database, function: the replica lags
				s.srv.metrics.retries.Add(1)
				return retryOnPrim
			}
		}
		s.w.Write(held)
	}
	if t.StatusSeen() {
		s.applyStatus(be, t.Status())
	}
	s.noteOutcome(u, be, t)
	if t.Err() == nil {
		s.succeeded(u, be, t)
	} else {
		s.failedUnit(u, be)
	}
	return sent
}

// forwardInfile streams the client's LOAD DATA LOCAL file packets to be until the empty packet.
func (s *session) forwardInfile(be *backend, bseq byte, name string) (byte, error) {
	if err := s.w.Flush(); err != nil {
		return 0, err
	}
	for {
		p, cseq, err := s.r.Next()
		if err != nil {
			be.close()
			s.closing.Store(true)
			return 0, err
		}
		var out []byte
		out, bseq = mywire.AppendPacket(nil, bseq, p)
		if _, err := be.w.Write(out); err != nil {
			return 0, err
		}
		if len(p) == 0 {
			if err := be.w.Flush(); err != nil {
				return 0, err
			}
			return cseq + 1, nil
		}
	}
}

// applyStatus takes the server's status flags as the truth about the transaction.
func (s *session) applyStatus(be *backend, st uint16) {
	s.status = st
	s.inTx = st&mywire.StatusInTrans != 0
	s.autocommit = st&mywire.StatusAutocommit != 0
	if s.inTx {
		s.txOn.Store(be.node)
	} else {
		s.txOn.Store(nil)
	}
	if s.inTx {
		s.txConn = be
	} else {
		s.txConn = nil
	}
}

// succeeded applies a unit's effects on the session.
func (s *session) succeeded(u *unit, be *backend, t *mywire.Tracker) {
	if u.state != "" {
		s.history = append(s.history, u.state)
		be.applied = len(s.history) // be ran it itself
	}
	if u.class.Unpin != 0 {
		s.pins &^= u.class.Unpin
	}
	if u.onDone != nil {
		u.onDone(be, t)
	}
	s.notePinState(u)
}

// replay brings be to the session's state: a reset when it carries another session's
// state, then the history entries it has not run, pipelined in front of the unit (their
// answers are read, and dropped, before the unit's: backend.drain).
func (s *session) replay(be *backend) error {
	if be.needReset {
		if err := be.injectReset(); err != nil {
			return err
		}
	}
	for be.applied < len(s.history) {
		q := s.history[be.applied]
		be.applied++
		if err := be.inject(mywire.ComQuery, q, injState); err != nil {
			return err
		}
		if containsFold(q, "session_track_system_variables") {
			if err := be.drain(s.warnReplay(be)); err != nil {
				return err
			}
			if err := be.retrack(); err != nil {
				return err
			}
		}
	}
	return nil
}

// fail drops a connection that failed mid-unit: the unit is resent elsewhere when nothing of it
// reached the client (held), else the client is told.
func (s *session) fail(be *backend, held bool) outcome {
	inTx := s.inTx
	s.drop(be)
	be.node.DropIdle() // its siblings are likely dying too: dial afresh (pool.Node.DropIdle)
	if held {
		return retryOther
	}
	s.lost(be, inTx)
	return sent
}

// lost tells the client that the node serving its statement went away. The code is a server
// error (ER_CONNECTION_KILLED, SQLSTATE 08S01): client-range codes (2000–2999, such as 2013)
// are never sent by servers, and Connector/C reports an ERR packet carrying one as "2027
// Received malformed packet", hiding the text.
func (s *session) lost(be *backend, inTx bool) {
	if inTx {
		s.writeErr(s.rseq, errConnectionKilled, "08S01", "baton: lost the connection to node "+be.node.name+" during a transaction; the transaction was rolled back")
		s.closing.Store(true)
		return
	}
	s.writeErr(s.rseq, errConnectionKilled, "08S01", "baton: lost the connection to node "+be.node.name+" while it ran the statement; its outcome is unknown")
}

// primaryName is the current primary's node name ("" if none).
func (s *session) primaryName() string {
	if p := s.srv.live.Load().PrimaryNode(); p != nil {
		return p.Name
	}
	return ""
}

// trimScratch drops a scratch buffer grown by a huge packet so idle sessions stay small.
func (s *session) trimScratch() {
	if cap(s.scratch) > 1<<20 {
		s.scratch = nil
	}
}
