package myproxy

import (
	"errors"
	"fmt"
	"strconv"
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
// transaction begins; and the previous statement's warnings or error (below).
//
// Diagnostics: statements that read the previous statement's outcome run where it ran
// (diag.go). In this mode the connection normally is back in the pool by then, so baton keeps
// what a later statement may ask about as data, and keeps the connection only where it must:
//   - warnings or an error (SHOW WARNINGS / ERRORS, @@warning_count, GET DIAGNOSTICS): the
//     connection is kept until the session's next command (which runs there); a session idle
//     after an error or warning holds one connection.
//   - no warnings: a diagnostics statement running on another connection gets "DO 0" in front
//     (nothing to report, as after a clean statement; another session's warnings never show).
//   - SELECT ROW_COUNT() and SELECT FOUND_ROWS() as the whole statement are answered by baton
//     from the previous statement's OK packet or result set (affected rows, -1 after a result
//     set or an error; the rows of the last result set).
//   - LAST_INSERT_ID() is session state that outlives statements: baton follows it in the
//     OK packets (last insert id) and, before a statement that names LAST_INSERT_ID or
//     @@identity runs on a connection another session used last, sets it with
//     "DO LAST_INSERT_ID(v)".

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
	be.hist, be.needReset = nil, false
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

// diagPrefix pipelines, in front of unit u on be, what makes be answer u as the session's own
// connection would: its LAST_INSERT_ID, and no other session's warnings.
func (s *session) diagPrefix(u *unit, be *backend) error {
	if !s.txPooling || be.lastConn == s.connID && be == s.lastRan && be.uses == s.lastUses {
		return nil
	}
	if text := unitText(s, u); text != "" && (containsFold(text, "last_insert_id") || containsFold(text, "identity")) {
		if err := be.inject(mywire.ComQuery, "DO LAST_INSERT_ID("+strconv.FormatUint(s.insertID, 10)+")", injQuiet); err != nil {
			return err
		}
	}
	if router.ReadsLastStatement(u.class) && be != s.condConn {
		// The server keeps a session's warnings until a statement that uses a table (or has
		// warnings of its own) runs: DO 0 would not clear another session's.
		return be.inject(mywire.ComQuery, clearDiagnostics, injQuiet)
	}
	return nil
}

// clearDiagnostics uses a table, has no warnings and changes nothing: after it the server has
// no conditions to report, as after a clean statement.
const clearDiagnostics = "DO (SELECT 1 FROM information_schema.CHARACTER_SETS LIMIT 0)"

// usesTables reports whether statement text q certainly names a table (then the server clears
// the previous statement's warnings when q runs). Unsure means false: the session then keeps the
// connection with the warnings a little longer.
func usesTables(q string) bool {
	t, ok := sqlTokens(q)
	if !ok {
		return false
	}
	for i, tk := range t {
		if tk.kind != tkWord {
			continue
		}
		switch strings.ToLower(tk.text) {
		case "from", "into", "join", "update", "table", "tables":
			if i+1 < len(t) && (t[i+1].kind == tkWord || t[i+1].kind == tkQuoted) && !strings.EqualFold(t[i+1].text, "dual") {
				return true
			}
		}
	}
	return false
}

// unitText is the statement text of a unit (a query, or a prepared statement's text).
func unitText(s *session, u *unit) string {
	switch {
	case u.cmd[0] == mywire.ComQuery:
		return string(u.cmd[1:])
	case u.cmd[0] == mywire.ComStmtExecute && u.stmt != nil:
		return u.stmt.query
	}
	return ""
}

// noteOutcome records, after the client's statement on be, what a later statement may ask
// about it (ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID(), warnings).
func (s *session) noteOutcome(u *unit, be *backend, t *mywire.Tracker) {
	be.uses++
	be.lastConn = s.connID
	s.lastRan, s.lastUses = be, be.uses
	if c := u.cmd[0]; c != mywire.ComQuery && c != mywire.ComStmtExecute {
		return
	}
	if router.ReadsLastStatement(u.class) && t.Err() == nil {
		// SHOW WARNINGS, GET DIAGNOSTICS …: they describe the previous statement and leave
		// its diagnostics in place (the server does not clear them): so does baton.
		return
	}
	switch {
	case t.Err() != nil || t.Warnings() > 0:
		s.lastCond, s.condConn = true, be
	case usesTables(unitText(s, u)):
		s.lastCond, s.condConn = false, nil
	}
	rows, rs := t.Rows()
	switch {
	case t.Err() != nil, rs:
		s.rowCount = -1
	case t.OK() != nil:
		s.rowCount = int64(t.OK().AffectedRows)
	}
	if rs && t.Err() == nil {
		s.foundRows = rows
	}
	s.lastStale = false
	if s.txPooling && rs && t.Err() == nil && setsLastInsertID(unitText(s, u)) {
		// SELECT LAST_INSERT_ID(expr): the new value is in no OK packet; ask the connection
		// (no table, no warnings: the server keeps the statement's warnings). ROW_COUNT() and
		// FOUND_ROWS() of the connection are baton's from now on: baton answers them.
		if v, null, err := be.queryValue("SELECT LAST_INSERT_ID()", posQueryTimeout); err == nil && !null {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				s.insertID = n
			}
		}
		s.lastStale = true
	}
}

// setsLastInsertID reports whether statement text q calls LAST_INSERT_ID with an argument
// (which sets the session's value) — or may, when q cannot be lexed.
func setsLastInsertID(q string) bool {
	if !containsFold(q, "last_insert_id") {
		return false
	}
	t, ok := sqlTokens(q)
	if !ok {
		return true
	}
	for i := 0; i+2 < len(t); i++ {
		if t[i].kind == tkWord && strings.EqualFold(t[i].text, "last_insert_id") && t[i+1].kind == tkLParen && t[i+2].kind != tkRParen {
			return true
		}
	}
	return false
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

// lastStatementQuery recognises SELECT ROW_COUNT() / SELECT FOUND_ROWS() [[AS] alias] as the
// whole statement; fn is "row_count" or "found_rows" and col the result column's name.
func lastStatementQuery(q string) (fn, col string, ok bool) {
	if len(q) > maxAnsweredLen || !(containsFold(q, "row_count") || containsFold(q, "found_rows")) {
		return "", "", false
	}
	t := strings.TrimRight(strings.TrimSpace(q), "; \t\r\n")
	if len(t) < 7 || !strings.EqualFold(t[:6], "select") || !isSpace(t[6]) {
		return "", "", false
	}
	t = strings.TrimLeft(t[6:], " \t\r\n")
	for _, name := range []string{"row_count", "found_rows"} {
		if len(t) < len(name) || !strings.EqualFold(t[:len(name)], name) {
			continue
		}
		r := strings.TrimLeft(t[len(name):], " \t\r\n")
		if !strings.HasPrefix(r, "(") {
			return "", "", false
		}
		r = strings.TrimLeft(r[1:], " \t\r\n")
		if !strings.HasPrefix(r, ")") {
			return "", "", false
		}
		expr := t[:len(t)-len(r)+1]
		rest := strings.TrimSpace(r[1:])
		if rest == "" {
			return name, expr, true
		}
		if len(rest) > 3 && strings.EqualFold(rest[:2], "as") && isSpace(rest[2]) {
			rest = strings.TrimSpace(rest[3:])
		}
		if a, ok := plainAlias(rest); ok {
			return name, a, true
		}
		return "", "", false
	}
	return "", "", false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// plainAlias accepts an unquoted identifier that is no keyword baton would misread, or a
// backquoted one without backquotes inside.
func plainAlias(a string) (string, bool) {
	if len(a) >= 2 && a[0] == '`' && a[len(a)-1] == '`' && !strings.Contains(a[1:len(a)-1], "`") {
		return a[1 : len(a)-1], len(a) > 2
	}
	if a == "" {
		return "", false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return "", false
		}
	}
	switch strings.ToLower(a) {
	case "as", "from", "where", "limit", "into", "for", "union", "order", "group", "having", "lock", "procedure", "window":
		return "", false
	}
	return a, true
}

// answerLastStatement answers SELECT ROW_COUNT() / FOUND_ROWS() from what noteOutcome kept:
// one BIGINT column named col, one row, as the server sends it.
func (s *session) answerLastStatement(fn, col string) {
	v := strconv.FormatInt(s.rowCount, 10)
	if fn == "found_rows" {
		v = strconv.FormatUint(s.foundRows, 10)
	}
	seq := s.rseq
	var out []byte
	out, seq = mywire.AppendPacket(out, seq, []byte{1})
	out, seq = mywire.AppendPacket(out, seq, mywire.AppendColumnDef(nil, mywire.ColumnDef{
		Name: col, Charset: 63, Length: 21, Type: mywire.TypeLongLong,
		Flags: mywire.FlagNotNull | mywire.FlagBinary,
	}, s.extMeta))
	deprecateEOF := s.caps&mywire.ClientDeprecateEOF != 0
	if !deprecateEOF {
		out = mywire.AppendEOF(out, seq, 0, s.statusNow())
		seq++
	}
	out, seq = mywire.AppendPacket(out, seq, mywire.AppendLenEncString(nil, v))
	if deprecateEOF {
		out = mywire.AppendOKAsEOF(out, seq, mywire.OK{Status: s.statusNow()}, s.caps)
	} else {
		out = mywire.AppendEOF(out, seq, 0, s.statusNow())
	}
	s.w.Write(out)
	// As after any SELECT without a table: a result set of one row. (A connection the session
	// still holds answers ROW_COUNT() for an older statement: baton answers from now on.)
	s.rowCount, s.foundRows = -1, 1
	s.lastRan, s.lastStale = nil, true
}
