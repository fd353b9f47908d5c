package myproxy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
)

// Transaction pooling (pool_mode: transaction; DESIGN §2 "Session state and pooling").
//
// A session owns a backend connection for one command outside a transaction, or for a whole
// transaction; after the command (run → checkIn) the connection goes back to its node's pool
// unless something keeps the session on it. The session's state is data, compared with what
// a connection carries when the session takes it (acquire → reconcile):
//
//   - settings: the session history (SET …, USE, SET NAMES, autocommit, sql_mode — the texts
//     session mode already replays) against backend.hist, the history the connection had
//     applied when it was checked in. When backend.hist is a prefix of the session's history
//     only the rest is replayed; otherwise the connection is reset first with
//     COM_RESET_CONNECTION. Per-variable "SET x = DEFAULT" was rejected: it needs every SET
//     parsed into the variables it touches (SET NAMES, CHARACTER SET, ROLE, TRANSACTION
//     ISOLATION, @@session.x, several in one statement) and cannot undo USE or a role; the
//     reset is one command the server defines exactly, and it also drops what a session
//     could leave behind unseen (user variables, temporary tables after their pin ended). It
//     drops the connection's prepared statements too, so it is the last resort: a session
//     whose state matches (the same defaults, or the same SETs) takes the connection as it is.
//     After the reset baton restores its own GTID tracking and the pool key's database.
//   - Everything baton sends to bring a connection up to date (reset, tracking, history,
//     LAST_INSERT_ID, closing evicted statements) is pipelined in front of the client's
//     command, in the same write, and the answers are read and dropped before the client's
//     (backend.pending, drain): no extra round trip. (The backend need not have
//     CLIENT_MULTI_STATEMENTS: every injected statement is a command of its own.) A history
//     entry that sets session_track_system_variables is the exception: baton reads the list
//     back after it (track.go).
//   - prepared statements: each connection keeps its server statements by text
//     (backend.prep), shared by every session that prepares or executes that text, at most
//     pool.max_prepared_statements of them (the least recently used is closed with
//     COM_STMT_CLOSE, pipelined). A client's COM_STMT_PREPARE is always sent (its answer is the
//     server's own metadata); an execution on a connection that lacks the text prepares it
//     there first. A client's COM_STMT_CLOSE closes nothing on the server in this mode: the
//     statement stays for other sessions.
//
// What keeps the session on its connection (holdReason): an open transaction; a pin (router
// Pin bits: temporary tables, LOCK TABLES, GET_LOCK, user variables, SQL PREPARE, …) — then
// the connections to the primary stay, until the pin's state is gone; COM_STMT_SEND_LONG_DATA
// until the execution that uses it; an open cursor until it is exhausted, reset or closed;
// SET TRANSACTION (it applies to the session's next transaction only) until that
// transaction begins; an XA transaction from XA START to XA COMMIT / ROLLBACK; GET DIAGNOSTICS
// variables not yet copied from a replica (diag.go); and the warnings or error of an earlier
// statement (txdiag.go).
//
// Diagnostics (txdiag.go): statements that read the previous statement's outcome run where
// it ran (diag.go); in this mode its connection is normally back in the pool by then, so baton
// keeps what a later statement may ask about as data, and the connection only where it must.

// injKind says what a failure of an injected command means.
type injKind uint8

const (
	injState injKind = iota // session history: logged, as a failed replay always was
	injReset                // COM_RESET_CONNECTION: the connection's state is unknown: close it
	injTrack                // baton's last_gtid tracking: the connection is untracked
	injQuiet                // diagnostics prefixes: their answer does not matter
)

// injected is a command baton sent on a connection whose answer is still to be read.
type injected struct {
	cmd  byte
	kind injKind
	sql  string
}

// inject writes one command of baton's own to b (not flushed); its answer is read by drain.
func (b *backend) inject(cmd byte, arg string, kind injKind) error {
	out, _ := mywire.AppendPacket(nil, 0, append([]byte{cmd}, arg...))
	if _, err := b.w.Write(out); err != nil {
		return err
	}
	if !mywire.NoResponse(cmd) {
		b.pending = append(b.pending, injected{cmd: cmd, kind: kind, sql: arg})
	}
	return nil
}

// errInjected: the server refused a command that had to work (a reset).
var errInjected = errors.New("myproxy: the server refused baton's reset of a pooled connection")

// drain flushes b and reads the answers to the injected commands. warn reports a refused
// history statement. An I/O error, or a refused reset, closes b.
func (b *backend) drain(warn func(q string, e *mywire.ERR)) error {
	if len(b.pending) == 0 {
		return nil
	}
	if err := b.w.Flush(); err != nil {
		b.close()
		return err
	}
	for len(b.pending) > 0 {
		inj := b.pending[0]
		b.pending = b.pending[1:]
		t := mywire.NewTracker(inj.cmd, b.cc.Caps)
		for {
			p, _, err := b.cc.R.Next()
			if err != nil {
				b.close()
				return err
			}
			done, err := t.Feed(p)
			if err != nil {
				b.close()
				return err
			}
			if done {
				break
			}
		}
		if e := t.Err(); e != nil {
			switch inj.kind {
			case injReset:
				b.close()
				return fmt.Errorf("%w: %s", errInjected, e.Message)
			case injTrack:
				b.gtidTracked, b.addedGTID = false, false
			case injState:
				if warn != nil {
					warn(inj.sql, e)
				}
			}
		}
	}
	b.pending = nil
	return nil
}

// warnReplay logs a history statement a connection refused.
func (s *session) warnReplay(be *backend) func(string, *mywire.ERR) {
	return func(q string, e *mywire.ERR) {
		s.srv.log.Warn("replaying session state failed", "cluster", s.srv.config().Name, "node", be.node.name, "code", e.Code, "error", e.Message)
	}
}

// reconcile compares what a connection taken from the pool carries with the session's state:
// what replay must still send.
func (s *session) reconcile(be *backend) {
	if isPrefix(be.hist, s.history) {
		be.applied = len(be.hist)
		return
	}
	be.applied, be.needReset = 0, true
}

// isPrefix reports whether a is a prefix of b.
func isPrefix(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// injectReset pipelines the reset of a connection that carries another session's state, and
// what baton itself keeps on every connection: last_gtid tracking and the pool key's database.
func (be *backend) injectReset() error {
	if err := be.inject(mywire.ComResetConnection, "", injReset); err != nil {
		return err
	}
	be.prep = map[string]*srvStmt{}
	be.hist, be.needReset, be.lidConn = nil, false, 0
	if be.mayTrack() {
		q := be.node.trackQuery()
		be.gtidTracked, be.addedGTID = q != "", q != "" && q != "-"
		if be.addedGTID {
			if err := be.inject(mywire.ComQuery, q, injTrack); err != nil {
				return err
			}
		}
	}
	if db := be.key.Database; db != "" {
		return be.inject(mywire.ComQuery, "USE `"+strings.ReplaceAll(db, "`", "``")+"`", injReset)
	}
	return nil
}

// holdReason says why the session keeps its connections after a command ("" it does not).
func (s *session) holdReason() string {
	switch {
	case s.inTx:
		return "transaction"
	case s.nextTx:
		return "set-transaction"
	case s.xa:
		return "xa"
	}
	for _, st := range s.stmts {
		if st.cursor != nil || st.longData != nil {
			return "statement"
		}
	}
	return ""
}

// checkIn returns the session's connections to their pools after a command (transaction
// pooling), keeping those that carry what cannot move (holdReason, pins, diagnostics).
func (s *session) checkIn() {
	if !s.txPooling || s.closing.Load() || len(s.conns) == 0 || s.holdReason() != "" {
		return
	}
	prim := s.primaryName()
	for np, be := range s.conns {
		switch {
		case be.broken:
			s.drop(be)
			continue
		case s.pins != 0 && np.name == prim:
			continue // the pinned state lives there
		case be == s.condConn:
			continue // the session's warnings or error may still be asked for
		case be == s.varsFrom:
			continue // GET DIAGNOSTICS variables not yet copied to the primary (diag.go)
		}
		s.checkInConn(be)
	}
}

// releaseCondConn gives back, when the session would have to wait for a connection to np, a
// connection of another node that it keeps only for its warnings (transaction pooling): two
// sessions that each keep one node's connection for that reason, and wait for the other's
// node, would otherwise wait until the pool's acquire timeout. The warnings are then
// forgotten, as if a statement with a table had run.
func (s *session) releaseCondConn(np *nodePool) {
	be := s.condConn
	if !s.txPooling || be == nil || be.node == np || s.inTx || s.holdReason() != "" || be == s.varsFrom ||
		s.pins != 0 && be.node.name == s.primaryName() || s.conns[be.node] != be {
		return
	}
	if open, idle := np.Stats(); idle > 0 || open < s.srv.config().Pool.MaxPerNode {
		return // a connection is free, or may be dialled: no wait
	}
	s.checkInConn(be)
}

// checkInConn gives be back to its pool, recording what it carries for the next session.
func (s *session) checkInConn(be *backend) {
	delete(s.conns, be.node)
	if s.replica == be {
		s.replica = nil
	}
	if s.last == be {
		s.last = nil
	}
	if s.varsFrom == be {
		s.varsFrom, s.vars = nil, nil
	}
	if s.condConn == be {
		s.condConn, s.lastCond = nil, false
	}
	// What it carries for the next session: a prefix of this session's history. A connection
	// that carried pinned state is reset by the pool instead (pinstate.go); one that was never
	// brought up to date keeps its reset pending.
	s.noteHist(be)
	be.keepState = !be.dirty
	be.node.Release(be, be.key, !be.broken && len(be.pending) == 0 && !strandedDB(be))
}

// noteHist records on be the part of the session's history it has applied (the session only
// appends to its history: no copy needed); one never brought up to date keeps what it had.
func (s *session) noteHist(be *backend) {
	if !be.needReset {
		be.hist = s.history[:be.applied:be.applied]
	}
}

// strandedDB reports whether be may be in a database other than its pool key's when the key
// names none: after USE there is no way back to "no database" (COM_RESET_CONNECTION keeps the
// current one), so such a connection is closed rather than handed to another session.
func strandedDB(be *backend) bool {
	if be.key.Database != "" {
		return false
	}
	for _, q := range be.hist {
		if containsFold(q, "use") {
			return true
		}
	}
	return be.dirty // (what ran on it is not all in hist)
}

// srvStmt is a statement prepared on one connection, shared by every session that uses its
// text there.
type srvStmt struct {
	id    uint32
	types []byte // the parameter types the server last saw for it (nil: none)
	used  uint64 // LRU tick
}

// touch records a use of statement text q on be.
func (be *backend) touch(q string) *srvStmt {
	ss := be.prep[q]
	if ss != nil {
		be.tick++
		ss.used = be.tick
	}
	return ss
}

// makeRoom closes least recently used statements on be (pipelined, COM_STMT_CLOSE has no
// answer) until one more fits under pool.max_prepared_statements; keep names the text the unit
// itself needs. Statements of this session with an open cursor or long data stay.
func (s *session) makeRoom(be *backend, keep string) error {
	max := s.srv.config().Pool.MaxPreparedStatements
	for max > 0 && len(be.prep) >= max {
		victim, oldest := "", ^uint64(0)
		for q, ss := range be.prep {
			if q != keep && ss.used < oldest && !s.busyText(be, q) {
				victim, oldest = q, ss.used
			}
		}
		if victim == "" {
			return nil
		}
		if err := be.closeServerStmt(be.prep[victim].id); err != nil {
			return err
		}
		delete(be.prep, victim)
	}
	return nil
}

// busyText reports whether a statement of this session with text q has a cursor or long data
// on be.
func (s *session) busyText(be *backend, q string) bool {
	for _, st := range s.stmts {
		if st.query == q && (st.cursor == be || st.longData == be) {
			return true
		}
	}
	return false
}

// closeServerStmt writes a COM_STMT_CLOSE of server statement id to be (not flushed: it goes
// with the next command).
func (be *backend) closeServerStmt(id uint32) error {
	var arg [4]byte
	arg[0], arg[1], arg[2], arg[3] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
	return be.inject(mywire.ComStmtClose, string(arg[:]), injQuiet)
}

// noteSetTransaction records whether a COM_QUERY of class cls was a SET TRANSACTION (the
// session's next transaction only) outside a transaction: the connection then stays with the
// session until a transaction begins.
func (s *session) noteSetTransaction(cls router.Class, failed bool) {
	switch {
	case s.inTx || cls.Tx != router.TxNone:
		s.nextTx = false
	case !failed && cls.Reason == "set-transaction":
		s.nextTx = true
	}
}
