package pgproxy

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// dispatchGroup routes the buffered extended-protocol group. openEnded: the group has no Sync
// yet (Flush, or too large to hold); the rest of its frames will follow the same backend.
func (s *session) dispatchGroup(openEnded bool) bool {
	frames := s.group
	s.group = nil
	if len(s.signals) > 0 || bytes.Contains(frames, []byte("_backend")) || bytes.Contains(frames, []byte("_BACKEND")) {
		frames = s.signalGroup(frames)
	}
	cls, state, err := s.classifyGroup(frames)
	if err != nil {
		s.fatal("08P01", err.Error())
		return false
	}
	if openEnded && len(frames) > int(s.srv.config().Limits.MaxPipelineBytes) {
		cls.Route, cls.Reason = router.Primary, "large-group"
	}
	return s.dispatch(frames, cls, openEnded, state, "")
}

// classifyGroup combines the classes of every statement a group parses or uses. state is the
// text of the session-state statements (SET …) the group binds, to record for replay.
func (s *session) classifyGroup(frames []byte) (out router.Class, state string, err error) {
	out = router.Class{Route: router.Replica, Reason: "select"}
	any := false
	local := map[string]router.Class{}
	texts := map[string]string{}
	var states []string
	for f := range eachFrame(frames) {
		var c router.Class
		var ok bool
		switch f[0] {
		case 'P':
			name, q, err := pgwire.ParseMsg(pgwire.Body(f))
			if err != nil {
				return out, "", err
			}
			c, ok = s.srv.classify(q), true
			local[name], texts[name] = c, q
		case 'B':
			_, name, err := pgwire.BindMsg(pgwire.Body(f))
			if err != nil {
				return out, "", err
			}
			c, ok = s.stmtClass(local, name)
			if c.SessionState && !c.Multi {
				if q, in := texts[name]; in {
					states = append(states, q)
				} else if st := s.stmts[name]; st != nil {
					states = append(states, st.query)
				}
			}
		case 'D', 'C':
			kind, name, err := pgwire.DescribeMsg(f[0], pgwire.Body(f))
			if err != nil {
				return out, "", err
			}
			if kind == 'S' && f[0] == 'D' {
				c, ok = s.stmtClass(local, name)
			}
		case 'E':
			if len(f) < 10 {
				return out, "", &pgwire.FormatError{Type: 'E', Msg: "truncated"}
			}
		}
		if ok {
			any = true
			if f[0] != 'B' {
				// Parsing or describing runs nothing: only where it may run counts.
				c = router.Class{Route: c.Route, Reason: c.Reason}
			}
			out = combine(out, c)
		}
	}
	if !any {
		// Nothing but Sync/Describe portal/Execute: portals live in transactions; stay put.
		return router.Class{Route: router.Primary, Reason: "no-statement"}, "", nil
	}
	return out, strings.Join(states, ";"), nil
}

func (s *session) stmtClass(local map[string]router.Class, name string) (router.Class, bool) {
	if c, ok := local[name]; ok {
		return c, true
	}
	if st := s.stmts[name]; st != nil {
		// Classified again (a cache hit): a statement prepared before the function catalog
		// loaded, or before DDL changed a function, routes by what is known now.
		return s.srv.classify(st.query), true
	}
	return router.Class{Route: router.Primary, Reason: "unknown-statement"}, true
}

func combine(a, b router.Class) router.Class {
	out := a
	if b.Route == router.Primary && a.Route == router.Replica {
		out.Route, out.Reason = router.Primary, b.Reason
	}
	if b.Tx != router.TxNone {
		out.Tx = b.Tx
	}
	out.SessionState = a.SessionState || b.SessionState
	out.ResetAll = a.ResetAll || b.ResetAll
	out.Pin |= b.Pin
	out.Unpin |= b.Unpin
	out.CopyIn = a.CopyIn || b.CopyIn
	out.CopyOut = a.CopyOut || b.CopyOut
	return out
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// dispatch routes one unit and sends it. state is the session-state text the unit runs, to
// record for replay when it succeeds ("" for none).
// dealloc names a protocol-level prepared statement that an SQL DEALLOCATE in the unit drops.
func (s *session) dispatch(frames []byte, cls router.Class, openEnded bool, state, dealloc string) bool {
	s.wait() // routing needs the exact transaction state
	implied := s.implied
	s.implied = false
	s.resolveCancel(nil) // a cancel that came while idle cancels nothing, as on PostgreSQL
	s.dispatching.Store(true)
	defer s.dispatching.Store(false)
	if s.closing.Load() {
		return false
	}
	if s.sharedListen(frames, cls, openEnded || implied) {
		return true // answered through the listener hub, without pinning (notify.go)
	}
	if cls.Pin != 0 {
		s.pins |= cls.Pin // fail closed: pin before we know it worked
	}
	if s.serializable && cls.Route == router.Replica {
		cls.Route, cls.Hint, cls.Reason = router.Primary, false, "serializable-session"
	}
	if s.txStatus == 'T' && s.roTx != nil && cls.Reason == "set-transaction" && needsWritableTx(unitText(frames)) {
		s.moveTx = s.moveReadOnlyTx()
		cls.Route = router.Primary
	}
	var be *backend
	var route router.Route
	var err error
	var avoid map[*nodePool]bool
	var hold *buffer.Hold
	for {
		var np *nodePool
		np, route, err = s.pick(cls, avoid)
		if err == nil && route == router.Primary {
			if rb := s.awaitReplica(cls, avoid); rb != nil {
				be, route = rb, router.Replica // a replica caught up with the session's write
				break
			}
		}
		if err == nil {
			be, err = s.acquire(np)
			var lost *endSession
			if errors.As(err, &lost) {
				s.srv.metrics.errors.Add(1)
				s.closing.Store(true)
				s.push(&unit{synthetic: lost.fatal})
				s.wait()
				return false
			}
		}
		if err == nil && route == router.Primary && cls.Route == router.Primary && !s.srv.mayWrite() {
			err = buffer.ErrWriteLease
		}
		if err == nil && route == router.Primary && s.pins == 0 && s.txStatusNow() == 'I' && s.txConn == nil && !s.srv.stillPrimary(np) {
			// The node stopped being the primary while the connection was being acquired (a
			// dial that finished after the failover's cut): nothing was sent; hold the unit
			// for the new primary instead of writing to the fenced one.
			s.drop(be)
			be, err = nil, buffer.ErrNoPrimary
		}
		if err == nil {
			if route == router.Primary {
				s.srv.buf.Seen()
			}
			break
		}
		if route != router.Replica {
			// No primary, a primary that refuses connections, or no etcd lease: nothing was
			// sent, so the unit waits in the failover buffer for a (new) primary.
			if !s.mayHold(err) {
				break
			}
			if hold == nil {
				hold = s.srv.buf.Hold(s.srv.mayWrite)
			}
			if err = hold.Wait(err); err != nil {
				break
			}
			continue
		}
		if errors.Is(err, pool.ErrTimeout) {
			break // a busy replica, not a dead one: the client hears it (acquire_timeout, once)
		}
		// A replica the health checker has not yet seen die: read elsewhere.
		if avoid == nil {
			avoid = map[*nodePool]bool{}
		}
		avoid[np] = true
		s.srv.metrics.retries.Add(1)
	}
	if hold != nil {
		hold.End()
	}
	if err != nil {
		s.srv.metrics.errors.Add(1)
		s.resolveCancel(nil)
		s.failUnit(openEnded || implied, "57P03", err.Error())
		return true
	}
	if route == router.Primary && be.node != nil {
		s.txOn.Store(be.node) // busy on the primary until ReadyForQuery says idle (switchover drain)
	}
	u := &unit{be: be, frames: frames, class: cls, openEnded: openEnded, dealloc: dealloc}
	u.impliedSync.Store(implied)
	u.retryable = route == router.Replica && s.txStatusNow() == 'I' && cls.Tx == router.TxNone && !openEnded && !cls.CopyIn
	if state != "" && cls.SessionState && !cls.Multi {
		u.hist = &histEntry{sql: state, discard: cls.ResetAll && cls.Unpin != 0}
	} else if cls.SessionState {
		s.pins |= router.PinOther // state baton cannot replay exactly: stay on the primary
	}
	s.srv.metrics.count(route)
	if openEnded {
		s.openUnit = u // frames up to the Sync follow this unit
	}
	if s.srv.config().Consistency == topology.ReadYourWrites && route == router.Primary && !openEnded &&
		cls.Route == router.Primary && ((s.txStatusNow() == 'I' && cls.Tx == router.TxNone) || cls.Tx == router.TxEnd) {
		u.lsnProbe = true // learn where the write ended, to read only from replicas that have it
	}
	out := s.prepare(u, be)
	if u.refused != nil {
		s.refuse(u, openEnded || implied)
		return true
	}
	if s.inlineOK(u) {
		s.sendInline(u, out)
		return true
	}
	s.push(u)
	s.start(u, be, out)
	return true
}

// start sends a unit's bytes. The client's statement counts as running (cancellable) at once
// unless baton's replays go in front of it: then the relay marks it running once they are
// answered, so that a cancel never reaches a statement the client did not send.
func (s *session) start(u *unit, be *backend, out []byte) {
	s.cancelMu.Lock()
	if u.replays == 0 {
		s.prefixing.Store(false)
		s.active.Store(be)
	} else {
		s.active.Store(nil)
		s.prefixing.Store(true)
	}
	s.send(be, out)
	s.cancelMu.Unlock()
	if u.replays == 0 {
		s.cancelIfPending(be)
	}
}

// running marks the client's part of a unit as started on be (after baton's replays) and
// forwards a cancel that arrived meanwhile.
func (s *session) running(be *backend) {
	s.active.Store(be)
	s.prefixing.Store(false)
	s.cancelIfPending(be)
}

// cancelIfPending forwards a CancelRequest that arrived while the unit was on its way.
func (s *session) cancelIfPending(be *backend) { s.resolveCancel(be) }

// resolveCancel answers a waiting CancelRequest: it is sent to be while be runs the client's
// statement, and dropped otherwise (be nil: the statement never started or is over).
func (s *session) resolveCancel(be *backend) {
	s.cancelMu.Lock()
	defer s.cancelMu.Unlock()
	if s.cancelWait == nil {
		return
	}
	if be != nil && s.active.Load() == be {
		s.srv.sendCancel(be)
	}
	close(s.cancelWait)
	s.cancelWait = nil
}

func (s *session) send(be *backend, out []byte) {
	if _, err := be.w.Write(out); err != nil || be.w.Flush() != nil {
		be.close()
	}
}

// inlineWait is how long the client loop waits for the first response byte of a unit it relays
// itself before handing the unit to the relay goroutine (so that it can watch the client again).
const inlineWait = 50 * time.Millisecond

// inlineOK: the client loop may relay u itself. Not while LISTEN notifications must be forwarded
// between statements (the relay is their only writer), not for COPY FROM STDIN or a group still
// open (the client has more to send), and not when the client has already pipelined more
// messages.
func (s *session) inlineOK(u *unit) bool {
	return s.listen == nil && len(s.listens) == 0 && !u.openEnded && !u.class.CopyIn && s.crd.Buffered() == 0
}

// sendInline sends u and relays its answer on the client loop's own goroutine: for the common
// short statement this saves a goroutine hand-off each way. A unit whose first response byte
// takes longer than inlineWait goes to the relay, so a client that disconnects during a long
// statement is still noticed and the statement cancelled.
func (s *session) sendInline(u *unit, out []byte) {
	be := u.be
	// u.done stays nil while the client loop relays u itself (outstanding() reports true,
	// and nothing on this goroutine waits for it meanwhile); the relay path makes the channel.
	u.done = nil
	s.last = u
	s.start(u, be, out)
	be.conn.SetReadDeadline(time.Now().Add(inlineWait))
	_, err := be.rd.Peek1()
	be.conn.SetReadDeadline(time.Time{})
	if err != nil {
		// Slow (or failed: the relay sees the same error and handles it).
		s.startRelay()
		u.done = make(chan struct{})
		s.queue <- u
		return
	}
	s.process(u)
	s.active.Store(nil)
	s.checkIn()
	u.done = doneChan
	if s.listen != nil {
		// LISTEN ran inline: the relay must watch the connection for notifications from now on.
		s.push(&unit{synthetic: []byte{}})
	}
}

// doneChan is the done channel of every unit the client loop relayed itself (closed: done).
var doneChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// refuse answers a unit that prepare refused (nothing of it was sent) with u.refused, as the
// server would have: inside a transaction, the transaction fails too.
func (s *session) refuse(u *unit, openEnded bool) {
	s.openUnit = nil
	b := u.refused
	if s.txStatusNow() != 'I' {
		s.abortBackendTx(u.be)
		s.txStatus = 'E'
	}
	if openEnded {
		s.skipSync = true
	} else {
		b = pgwire.AppendReady(b, s.txStatusNow())
	}
	s.push(&unit{synthetic: b})
}

// failUnit answers a unit baton could not send with an ERROR (and ReadyForQuery when the unit
// was complete).
func (s *session) failUnit(openEnded bool, code, msg string) {
	b := pgwire.AppendError(nil, pgwire.SevError, code, "baton: "+msg)
	if openEnded {
		s.skipSync = true
	} else {
		b = pgwire.AppendReady(b, s.txStatusNow())
	}
	s.push(&unit{synthetic: b})
}

// pick chooses the node for a unit.
// pick chooses the node for a unit: the transaction's node inside one, else the router's
// placement. avoid lists replicas that just failed to connect for this unit.
func (s *session) pick(cls router.Class, avoid map[*nodePool]bool) (*nodePool, router.Route, error) {
	if s.txStatusNow() != 'I' && s.txConn != nil {
		if s.txConn.broken {
			return nil, 0, fmt.Errorf("the connection holding this transaction was lost")
		}
		return s.txConn.node, router.Primary, nil
	}
	if np := s.forceNode; np != nil {
		s.forceNode = nil
		return np, router.Replica, nil // (Replica: a node that may not be the primary; nothing is retried elsewhere)
	}
	p := s.placement()
	snap := s.srv.live.Load()
	behind := s.behind(snap)
	if avoid != nil || behind != nil {
		p.Avoid = func(name string) bool { return avoid[s.srv.node(name)] || behind[name] }
	}
	name, route, ok := router.Place(snap, cls, p, router.Spread) // sessions dealt over the nodes
	if !ok {
		return nil, router.Primary, fmt.Errorf("cluster %q: %w", s.srv.config().Name, buffer.ErrNoPrimary)
	}
	if route == router.Primary && behind == nil && router.ReadsPrimary(cls, p) {
		// primary_read_weight: the read was drawn to the primary; the session's reads stay
		// there as they stay on a replica. (Not when replicas were passed over for lacking the
		// session's write: it returns to its replica once that has caught up.)
		s.replica, s.sticky = nil, name
	}
	return s.srv.node(name), route, nil
}

// prepare builds the bytes that send u on be: replayed session state, re-prepared statements,
// then the client's frames. It updates the session's and the connection's bookkeeping.
func (s *session) prepare(u *unit, be *backend) []byte {
	u.be, u.replays, u.swallow = be, 0, 0
	var out []byte
	if be.needReset {
		be.needReset = false
		out = pgwire.AppendQuery(out, resetSettings) // another session's settings
		u.replays++
	}
	if be.applied < len(s.history) {
		out = s.appendReplay(out, u, be)
	}
	if s.moveTx != "" {
		out = pgwire.AppendQuery(out, s.moveTx)
		u.replays++
		s.moveTx = ""
	}
	for _, name := range be.closeLater {
		out = pgwire.AppendCloseStmt(out, name)
		u.swallow++
	}
	be.closeLater = be.closeLater[:0]
	if s.replica != be && u.class.Route == router.Replica && be.node != nil {
		if snap := s.srv.live.Load(); snap != nil && snap.PrimaryNode() != nil && snap.PrimaryNode().Name != be.node.name {
			s.replica, s.sticky = be, be.node.name
		}
	}
	if u.dealloc != "" && !s.txPooling {
		// SQL DEALLOCATE of a statement the client prepared with Parse: it must exist here.
		if st := s.stmts[u.dealloc]; st != nil {
			out = s.ensurePrepared(out, u, be, u.dealloc, st)
			s.closeElsewhere(be, u.dealloc)
		}
	}
	if s.txPooling {
		if u.dealloc != "" {
			// SQL DEALLOCATE of a protocol-level statement: the server knows it by baton's name;
			// give it the client's name for the DEALLOCATE to drop.
			if st := s.stmts[u.dealloc]; st != nil && st.srv != "" {
				out = append(out, renamedParse(u.dealloc, parseRest(pgwire.Body(st.parse)))...)
				u.swallow++
				delete(s.stmts, u.dealloc)
			}
		}
		out = s.prepareShared(out, u, be)
		if u.lsnProbe && !u.class.CopyIn {
			out = appendLSNProbe(out)
		}
		return out
	}
	// Walk the client's frames: re-prepare statements this connection lacks; track Parse/Close.
	frames := u.frames
	for f := range eachFrame(frames) {
		switch f[0] {
		case 'P':
			name, _, _ := pgwire.ParseMsg(pgwire.Body(f))
			st := s.stmts[name]
			if gen, had := be.stmts[name]; had && name != "" && (st == nil || st.gen != gen) {
				out = pgwire.AppendCloseStmt(out, name) // a stale copy from before a Close
				u.swallow++
			}
			s.stmtGen++
			_, q, _ := pgwire.ParseMsg(pgwire.Body(f))
			s.stmts[name] = &stmt{gen: s.stmtGen, parse: append([]byte(nil), f...), query: q}
			be.stmts[name] = s.stmtGen
		case 'B', 'D':
			name, ok := usedStatement(f)
			if !ok {
				continue
			}
			if st := s.stmts[name]; st != nil {
				out = s.ensurePrepared(out, u, be, name, st)
			}
		case 'C':
			if kind, name, _ := pgwire.DescribeMsg('C', pgwire.Body(f)); kind == 'S' {
				s.closeElsewhere(be, name)
			}
		}
	}
	out = append(out, frames...)
	if u.lsnProbe && !u.class.CopyIn {
		out = appendLSNProbe(out) // (COPY FROM STDIN: after the copy, relay.go)
	}
	return out
}

// appendReplay appends the Queries that bring be up to the session's state history. A DISCARD ALL
// in the history cannot run inside a multi-statement Query (an implicit transaction block), and
// it undoes everything before it: it goes alone, and only what follows it is replayed.
func (s *session) appendReplay(out []byte, u *unit, be *backend) []byte {
	hist := s.history[be.applied:]
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].discard {
			clear(be.stmts)
			out = pgwire.AppendQuery(out, hist[i].sql)
			u.replays++
			hist = hist[i+1:]
			break
		}
	}
	if len(hist) > 0 {
		var b []byte
		for _, h := range hist {
			b = append(b, h.sql...)
			b = append(b, ';')
		}
		out = pgwire.AppendQuery(out, string(b))
		u.replays++
	}
	be.applied = len(s.history)
	return out
}

// lsnQuery asks the primary for its WAL insert position after a session's write.
const lsnQuery = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text"

// lsnStatement is the name baton prepares lsnQuery under.
const lsnStatement = "baton_wal_insert_position"

// appendLSNProbe appends the WAL position query in the extended protocol under baton's own
// statement name: a simple Query would drop the client's unnamed prepared statement, which a
// client may still Bind (pgx describe-exec parses and describes in one group, binds in the next).
// Close first, so that it works whether or not the connection still holds it.
func appendLSNProbe(out []byte) []byte {
	out = pgwire.AppendCloseStmt(out, lsnStatement)
	parse := append(append([]byte(lsnStatement), 0), lsnQuery...)
	out = pgwire.AppendFrame(out, 'P', append(parse, 0, 0, 0)) // no parameter types
	bind := append([]byte{0}, lsnStatement...)                 // unnamed portal
	out = pgwire.AppendFrame(out, 'B', append(bind, 0, 0, 0, 0, 0, 0, 0))
	out = pgwire.AppendFrame(out, 'E', []byte{0, 0, 0, 0, 0}) // unnamed portal, all rows
	return append(out, syncFrame...)
}

// parseLSN parses PostgreSQL's "X/Y" LSN text (0 when it is not one).
func parseLSN(s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}

// closeElsewhere forgets statement name, which the unit closes on be, and has every other
// connection of the session that holds it close it in front of its next unit: a statement the
// client closed exists on no node afterwards.
func (s *session) closeElsewhere(be *backend, name string) {
	delete(s.stmts, name)
	delete(be.stmts, name)
	for _, other := range s.conns {
		if _, had := other.stmts[name]; had && other != be {
			delete(other.stmts, name)
			if name != "" {
				other.closeLater = append(other.closeLater, name)
			}
		}
	}
}

// ensurePrepared appends what makes be hold the session's current version of statement name:
// nothing, a Parse, or a Close of a stale version and a Parse. The responses are swallowed.
func (s *session) ensurePrepared(out []byte, u *unit, be *backend, name string, st *stmt) []byte {
	gen, had := be.stmts[name]
	if had && gen == st.gen {
		return out
	}
	if !had && st.rows != nil && u.refused == nil && !be.broken {
		// A lazy re-parse of a statement the client has described: check its shape first.
		if u.refused = s.checkShape(be, name, st); u.refused == nil && be.stmts[name] == st.gen {
			return out
		}
		if u.refused != nil {
			return out
		}
	}
	if had && name != "" {
		out = pgwire.AppendCloseStmt(out, name)
		u.swallow++
	}
	out = append(out, st.parse...)
	u.swallow++
	be.stmts[name] = st.gen
	return out
}

// deallocName returns the statement an SQL "DEALLOCATE [PREPARE] name" drops ("" for ALL or
// anything else).
func deallocName(q string) string {
	m := deallocRe.FindStringSubmatch(q)
	if m == nil || strings.EqualFold(m[1], "all") {
		return ""
	}
	if n := m[1]; strings.HasPrefix(n, `"`) {
		return strings.ReplaceAll(n[1:len(n)-1], `""`, `"`)
	}
	return strings.ToLower(m[1])
}

var deallocRe = regexp.MustCompile(`(?is)^\s*DEALLOCATE\s+(?:PREPARE\s+)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*;?\s*$`)

// behind lists, in read_your_writes mode, the replicas that have not yet replayed the session's
// last write (as of the last probe, or of a wait on it); reads avoid them. When all are behind,
// awaitReplica waits on one (ryw.go).
func (s *session) behind(snap *topology.Snapshot) map[string]bool {
	if s.lsn == 0 || snap == nil || s.srv.config().Consistency != topology.ReadYourWrites {
		return nil
	}
	var out map[string]bool
	for _, i := range snap.Readable {
		n := snap.Nodes[i]
		if parseLSN(n.ReplayPos) < s.lsn && (n.Name != s.caught || s.caughtLSN < s.lsn) {
			if out == nil {
				out = map[string]bool{}
			}
			out[n.Name] = true
		}
	}
	return out
}

// eachFrame yields the frames of a unit's bytes, which baton framed itself (complete frames:
// the client reader checked every length).
func eachFrame(b []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for off := 0; off+5 <= len(b); {
			f := b[off : off+1+int(be32(b[off+1:]))]
			off += len(f)
			if !yield(f) {
				return
			}
		}
	}
}

// usedStatement returns the prepared statement a Bind or a Describe of a statement names; ok is
// false for a Describe of a portal.
func usedStatement(f []byte) (name string, ok bool) {
	if f[0] == 'B' {
		_, name, _ = pgwire.BindMsg(pgwire.Body(f))
		return name, true
	}
	kind, name, _ := pgwire.DescribeMsg('D', pgwire.Body(f))
	return name, kind == 'S'
}
