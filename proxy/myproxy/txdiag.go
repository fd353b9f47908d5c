package myproxy

import (
	"strconv"
	"strings"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
)

// What describes a session's previous statement, under transaction pooling:
//
//   - warnings or an error (SHOW WARNINGS / ERRORS, @@warning_count, GET DIAGNOSTICS): the
//     server keeps them until a statement that uses a table, or has conditions of its own,
//     runs — a SELECT 1 or a SET does not clear them. baton keeps the connection that holds
//     them (session.condConn) until then, and sends the diagnostics statements there. (When
//     the session would have to wait for another node's connection while keeping one only for
//     this, it gives that one back and the warnings are forgotten.) A session idle after an
//     error or a warning holds one connection.
//   - no warnings: a diagnostics statement running on a connection that did not run the
//     session's previous statement gets clearDiagnostics in front (DO 0 would not clear
//     another session's warnings: it uses no table).
//   - SELECT ROW_COUNT() and SELECT FOUND_ROWS() as the whole statement ([AS] alias allowed)
//     are answered by baton from the previous statement's OK packet or result set (affected
//     rows, -1 after a result set or an error; the rows of the last result set, kept across
//     statements without one), as the server computes them.
//   - SELECT SQL_CALC_FOUND_ROWS does not pin the session (the classifier's PinOther): baton
//     reads FOUND_ROWS() from the connection right after it and answers SELECT FOUND_ROWS().
//   - LAST_INSERT_ID() is session state that outlives statements: baton follows it in the OK
//     packets (last insert id; after SELECT LAST_INSERT_ID(expr) it asks the connection) and,
//     before a statement that names LAST_INSERT_ID or @@identity runs on a connection that
//     did not run the session's previous statement, sets it with "DO LAST_INSERT_ID(v)".
//
// Other shapes that read ROW_COUNT() or FOUND_ROWS() (inside a larger expression) on another
// connection read what clearDiagnostics left (0, and the last SELECT's rows there).

// diagPrefix pipelines, in front of unit u on be, what makes be answer u as the session's own
// connection would: its LAST_INSERT_ID, and no other session's warnings.
func (s *session) diagPrefix(u *unit, be *backend) error {
	if !s.txPooling {
		return nil
	}
	if text := unitText(s, u); (be.lidConn != s.connID || be.lid != s.insertID) && text != "" &&
		(containsFold(text, "last_insert_id") || containsFold(text, "identity")) {
		if err := be.inject(mywire.ComQuery, "DO LAST_INSERT_ID("+strconv.FormatUint(s.insertID, 10)+")", injQuiet); err != nil {
			return err
		}
		be.lid, be.lidConn = s.insertID, s.connID
	}
	exact := be.lastConn == s.connID && be == s.lastRan && be.uses == s.lastUses
	if router.ReadsLastStatement(u.class) && !exact && be != s.condConn {
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
func usesTables(q string) bool { return tokensUseTables(sqlTokens(q)) }

// tokensUseTables is usesTables of a statement's tokens.
func tokensUseTables(t []sqlTok, ok bool) bool {
	if !ok {
		return false
	}
	for i, tk := range t {
		if tk.kind != tkWord {
			continue
		}
		switch w := tk.text; {
		case strings.EqualFold(w, "from"), strings.EqualFold(w, "into"), strings.EqualFold(w, "join"),
			strings.EqualFold(w, "update"), strings.EqualFold(w, "table"), strings.EqualFold(w, "tables"):
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
		if u.text == "" {
			u.text = string(u.cmd[1:])
		}
		return u.text
	case u.cmd[0] == mywire.ComStmtExecute && u.stmt != nil:
		return u.stmt.query
	}
	return ""
}

// unitTokens returns sqlTokens of the unit's text, lexed once per unit — and once per prepared
// statement for all its executions (the tokens are only read).
func unitTokens(s *session, u *unit) ([]sqlTok, bool) {
	if u.cmd[0] == mywire.ComStmtExecute && u.stmt != nil {
		st := u.stmt
		if !st.tokSet {
			st.toks, st.tokOK = sqlTokens(st.query)
			st.tokSet = true
		}
		return st.toks, st.tokOK
	}
	if !u.tokSet {
		u.toks, u.tokOK = sqlTokens(unitText(s, u))
		u.tokSet = true
	}
	return u.toks, u.tokOK
}

// noteOutcome records, after the client's statement on be, what a later statement may ask
// about it (ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID(), warnings).
func (s *session) noteOutcome(u *unit, be *backend, t *mywire.Tracker) {
	be.uses++
	be.lastConn = s.connID
	s.lastRan, s.lastUses = be, be.uses
	defer func() {
		// be's LAST_INSERT_ID() is the session's only while the session set or followed it
		// there (diagPrefix); any other session's statement makes it unknown.
		if be.lidConn == s.connID {
			be.lid = s.insertID
		} else {
			be.lidConn = 0
		}
	}()
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
	case tokensUseTables(unitTokens(s, u)):
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
	if u.calcFound && rs && t.Err() == nil {
		// SELECT SQL_CALC_FOUND_ROWS: FOUND_ROWS() counts past the LIMIT; only the
		// connection knows it. Ask it now (no table, no warnings: the statement's warnings
		// stay) and answer SELECT FOUND_ROWS() from then on.
		if v, null, err := be.queryValue("SELECT FOUND_ROWS()", posQueryTimeout); err == nil && !null {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				s.foundRows = n
			}
		}
		s.lastStale = true
	}
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

// unpinCalcFound: in transaction pooling a SELECT SQL_CALC_FOUND_ROWS, whose only pin is the
// FOUND_ROWS() it leaves on its connection, does not pin the session: baton learns the value
// after it (noteOutcome) and answers SELECT FOUND_ROWS() itself.
func (s *session) unpinCalcFound(u *unit) {
	if s.txPooling && u.class.Reason == "sql-calc-found-rows" && u.class.Pin == router.PinOther && !u.class.Multi {
		u.class.Pin, u.calcFound = 0, true
	}
}
