package myproxy

import (
	"strings"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
)

// Pins end when their state is gone. The classifier marks the statements that create state
// living on one connection (router Pin bits) and the few that certainly drop it (UNLOCK
// TABLES, RELEASE_ALL_LOCKS()). For the others baton follows the state itself, by name, from
// the statements' text:
//
//   - temp_table: CREATE TEMPORARY TABLE name adds it, DROP [TEMPORARY] TABLE names removes
//     them (an unqualified name only while the session's database is the one it was created
//     in);
//   - advisory_lock: GET_LOCK('name', …) counts a hold, RELEASE_LOCK('name') one release (the
//     server's locks are recursive), RELEASE_ALL_LOCKS() all;
//   - sql_prepare: PREPARE name FROM … adds, DEALLOCATE | DROP PREPARE name removes;
//   - user_variable: a variable assigned by a statement baton cannot replay stays until a
//     replayable SET @v = literal assigns it again (that SET is session history, replayed on
//     any connection like SET SESSION; it pins nothing).
//
// When a kind has no name left, and no statement created that kind of state in a way baton
// could not follow (a name that is an expression, several statements in one text, a stored
// routine), its pin ends. The connection that carried the state is reset (COM_RESET_CONNECTION)
// when it goes back to the pool, so a state baton lost track of never reaches another session.
// lock_tables ends with UNLOCK TABLES; "other" (HANDLER OPEN, SQL_CALC_FOUND_ROWS, SET values
// that read node or user variables, COM_SET_OPTION, …) lasts for the session.

// pinState is the named state behind the session's pins.
type pinState struct {
	temp        map[string]int // temporary table (as written, unquoted) → dbVer when created
	tempUnknown bool
	locks       map[string]int // GET_LOCK name (lower case) → holds
	lockUnknown bool
	prepared    map[string]bool // SQL PREPARE name (lower case)
	prepUnknown bool
	vars        map[string]bool // user variable (lower case, without @) baton cannot replay
	varsUnknown bool
	dbVer       int // changes of the session's database
}

// notePinState follows the named state of a unit that succeeded and ends the pins whose state
// is gone.
func (s *session) notePinState(u *unit) {
	ps := &s.pinState
	switch u.cmd[0] {
	case mywire.ComInitDB:
		ps.dbVer++
		return
	case mywire.ComQuery, mywire.ComStmtExecute:
	default:
		return
	}
	cls := u.class
	toks, ok := unitTokens(s, u)
	if !ok || cls.Multi {
		// Follow nothing in it; what it may have created cannot be followed either.
		ps.tempUnknown = ps.tempUnknown || cls.Pin&router.PinTempTable != 0
		ps.lockUnknown = ps.lockUnknown || cls.Pin&router.PinAdvisoryLock != 0
		ps.prepUnknown = ps.prepUnknown || cls.Pin&router.PinPrepare != 0
		ps.varsUnknown = ps.varsUnknown || cls.Pin&router.PinUserVar != 0
	} else {
		ps.follow(toks, cls)
	}
	if cls.Unpin&router.PinAdvisoryLock != 0 {
		ps.locks, ps.lockUnknown = nil, false
	}
	s.pins &^= ps.ended(s.pins)
	s.noteXA(u)
}

// failedUnit: a unit the server refused on be. A CREATE TEMPORARY TABLE that failed created
// nothing, so the pin it set before it ran (fail closed) may end. Several SETs in one text
// that failed part way may have changed be (a single SET changes nothing when it fails): be
// is reset before another session uses it.
func (s *session) failedUnit(u *unit, be *backend) {
	if u.class.Pin == router.PinTempTable && !u.class.Multi {
		s.pins &^= s.pinState.ended(s.pins) & router.PinTempTable
	}
	if u.class.SessionState && u.class.Multi {
		be.dirty = true
	}
	s.noteXA(u)
}

// noteXA follows XA transactions, which the server's IN_TRANS flag does not cover once they
// are ended or prepared: the connection stays with the session from XA START to XA COMMIT or
// ROLLBACK.
func (s *session) noteXA(u *unit) {
	if u.cmd[0] != mywire.ComQuery || u.t == nil {
		return
	}
	t, ok := unitTokens(s, u)
	if !ok || len(t) < 2 || t[0].kind != tkWord || !strings.EqualFold(t[0].text, "xa") {
		return
	}
	switch strings.ToLower(t[1].text) {
	case "start", "begin":
		s.xa = s.xa || u.t.Err() == nil
	case "commit", "rollback":
		s.xa = s.xa && u.t.Err() != nil
	}
}

// ended returns the pins of p whose state is gone.
func (ps *pinState) ended(p router.Pin) router.Pin {
	var out router.Pin
	if p&router.PinTempTable != 0 && len(ps.temp) == 0 && !ps.tempUnknown {
		out |= router.PinTempTable
	}
	if p&router.PinAdvisoryLock != 0 && len(ps.locks) == 0 && !ps.lockUnknown {
		out |= router.PinAdvisoryLock
	}
	if p&router.PinPrepare != 0 && len(ps.prepared) == 0 && !ps.prepUnknown {
		out |= router.PinPrepare
	}
	if p&router.PinUserVar != 0 && len(ps.vars) == 0 && !ps.varsUnknown {
		out |= router.PinUserVar
	}
	return out
}

// follow updates the named state from one statement's tokens.
func (ps *pinState) follow(t []sqlTok, cls router.Class) {
	w := func(i int) string {
		if i < len(t) && t[i].kind == tkWord {
			return followedWord(t[i].text)
		}
		return ""
	}
	switch w(0) {
	case "use":
		ps.dbVer++
	case "create":
		i := 1
		if w(i) == "or" && w(i+1) == "replace" {
			i += 2
		}
		if w(i) == "temporary" && w(i+1) == "table" {
			i += 2
			if w(i) == "if" && w(i+1) == "not" && w(i+2) == "exists" {
				i += 3
			}
			if name, _, ok := tableName(t, i); ok {
				if ps.temp == nil {
					ps.temp = map[string]int{}
				}
				ps.temp[name] = ps.dbVer
				return
			}
		}
		if cls.Pin&router.PinTempTable != 0 {
			ps.tempUnknown = true
		}
	case "drop":
		switch {
		case w(1) == "prepare" && len(t) == 3:
			delete(ps.prepared, strings.ToLower(t[2].text))
			return
		case w(1) == "temporary" && (w(2) == "table" || w(2) == "tables"):
			ps.dropTables(t, 3)
		case w(1) == "table" || w(1) == "tables":
			ps.dropTables(t, 2)
		}
	case "deallocate":
		if w(1) == "prepare" && len(t) == 3 {
			delete(ps.prepared, strings.ToLower(t[2].text))
		}
	case "prepare":
		if len(t) >= 3 && (t[1].kind == tkWord || t[1].kind == tkQuoted) && w(2) == "from" {
			if ps.prepared == nil {
				ps.prepared = map[string]bool{}
			}
			ps.prepared[strings.ToLower(t[1].text)] = true
			return
		}
	}
	if cls.Pin&router.PinPrepare != 0 && w(0) != "prepare" {
		ps.prepUnknown = true
	}
	ps.followLocks(t, cls)
	if cls.Pin&router.PinUserVar != 0 {
		for _, tk := range t {
			if tk.kind == tkUserVar {
				if ps.vars == nil {
					ps.vars = map[string]bool{}
				}
				ps.vars[tk.text] = true
			}
		}
	}
}

// followedWords are the words follow compares (lower case).
var followedWords = []string{"use", "create", "or", "replace", "temporary", "table", "tables", "if", "not",
	"exists", "drop", "prepare", "deallocate", "from"}

// followedWord returns word in lower case when follow compares it, and "" for any other word
// (which follow treats as no keyword): no allocation for the statements of every request.
func followedWord(word string) string {
	for _, k := range followedWords {
		if len(k) == len(word) && strings.EqualFold(k, word) {
			return k
		}
	}
	return ""
}

// dropTables removes the temporary tables a DROP TABLE names from t[i:].
func (ps *pinState) dropTables(t []sqlTok, i int) {
	if i+1 < len(t) && strings.EqualFold(t[i].text, "if") && strings.EqualFold(t[i+1].text, "exists") {
		i += 2
	}
	for {
		name, qualified, ok := tableName(t, i)
		if !ok {
			return
		}
		if ver, had := ps.temp[name]; had && (qualified || ver == ps.dbVer) {
			delete(ps.temp, name)
		}
		i += 1
		if qualified {
			i += 2
		}
		if i >= len(t) || t[i].kind != tkComma {
			return
		}
		i++
	}
}

// followLocks counts GET_LOCK and RELEASE_LOCK calls with a literal name.
func (ps *pinState) followLocks(t []sqlTok, cls router.Class) {
	for i := 0; i+1 < len(t); i++ {
		if t[i].kind != tkWord || t[i+1].kind != tkLParen {
			continue
		}
		var fn string
		switch {
		case strings.EqualFold(t[i].text, "get_lock"):
			fn = "get_lock"
		case strings.EqualFold(t[i].text, "release_lock"):
			fn = "release_lock"
		default:
			continue
		}
		literal := i+3 < len(t) && t[i+2].kind == tkString && (t[i+3].kind == tkComma || t[i+3].kind == tkRParen)
		switch {
		case fn == "get_lock" && literal:
			if ps.locks == nil {
				ps.locks = map[string]int{}
			}
			ps.locks[strings.ToLower(t[i+2].text)]++
		case fn == "get_lock":
			ps.lockUnknown = true
		case literal:
			n := strings.ToLower(t[i+2].text)
			if ps.locks[n] > 1 {
				ps.locks[n]--
			} else {
				delete(ps.locks, n)
			}
		}
	}
	if cls.Pin&router.PinAdvisoryLock != 0 && len(ps.locks) == 0 {
		ps.lockUnknown = true // pinned for a lock baton could not name
	}
}

// tableName reads [db.]name at t[i]: the name as written (unquoted) and whether it was
// qualified.
func tableName(t []sqlTok, i int) (name string, qualified, ok bool) {
	ident := func(j int) bool { return j < len(t) && (t[j].kind == tkWord || t[j].kind == tkQuoted) }
	if !ident(i) {
		return "", false, false
	}
	if i+2 < len(t) && t[i+1].kind == tkDot && ident(i+2) {
		return t[i].text + "." + t[i+2].text, true, true
	}
	return t[i].text, false, true
}

// replayableUserSet reports whether q is SET @v = literal [, @w = literal …] and nothing else:
// its effect is the same on any connection after the same history, so it is session history
// rather than a pin. It returns the variables it assigns (lower case, without @).
func replayableUserSet(q string) ([]string, bool) {
	t, ok := sqlTokens(q)
	if !ok || len(t) < 4 || t[0].kind != tkWord || !strings.EqualFold(t[0].text, "set") {
		return nil, false
	}
	var vars []string
	i := 1
	for {
		if i+2 >= len(t) || t[i].kind != tkUserVar || t[i+1].kind != tkEq {
			return nil, false
		}
		vars = append(vars, t[i].text)
		i += 2
		if t[i].kind == tkSign && i+1 < len(t) {
			i++
			if t[i].kind != tkNumber {
				return nil, false
			}
		}
		switch {
		case t[i].kind == tkString || t[i].kind == tkNumber:
		case t[i].kind == tkWord && (strings.EqualFold(t[i].text, "null") || strings.EqualFold(t[i].text, "true") || strings.EqualFold(t[i].text, "false")):
		default:
			return nil, false
		}
		i++
		if i == len(t) {
			return vars, true
		}
		if t[i].kind != tkComma {
			return nil, false
		}
		i++
	}
}

// forgetVars: a replayable SET assigned vars; the state baton could not replay is gone for them.
func (ps *pinState) forgetVars(vars []string) {
	for _, v := range vars {
		delete(ps.vars, v)
	}
}

// A small lexer for the statement shapes above. Anything it is not sure of (executable
// comments, backslashes in strings — their meaning depends on sql_mode — unterminated
// quotes, several statements) makes sqlTokens fail, and the caller follows nothing.

type tokKind uint8

const (
	tkWord    tokKind = iota // keyword or unquoted identifier
	tkQuoted                 // `identifier`
	tkString                 // '…' or "…" (text without quotes)
	tkNumber                 // 12, 1.5, 0x1f, 1e3
	tkUserVar                // @name (lower case, without @)
	tkEq                     // = or :=
	tkComma
	tkDot
	tkLParen
	tkRParen
	tkSign // + or - before a number
	tkOther
)

type sqlTok struct {
	kind tokKind
	text string
}

func sqlTokens(q string) ([]sqlTok, bool) {
	var out []sqlTok
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if i+2 < len(q) && (q[i+2] == '!' || q[i+2] == 'M') {
				return nil, false // executable comment: SQL inside
			}
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return nil, false
			}
			i += 2 + j + 2
		case c == '#' || c == '-' && strings.HasPrefix(q[i:], "-- "):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j + 1
			}
		case c == ';':
			if strings.TrimSpace(q[i+1:]) != "" {
				return nil, false
			}
			i = len(q)
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			var b strings.Builder
			for {
				k := strings.IndexByte(q[j:], c)
				if k < 0 {
					return nil, false
				}
				b.WriteString(q[j : j+k])
				j += k + 1
				if j < len(q) && q[j] == c {
					b.WriteByte(c)
					j++
					continue
				}
				break
			}
			text := b.String()
			if c != '`' && strings.ContainsRune(text, '\\') {
				return nil, false
			}
			kind := tkString
			if c == '`' {
				kind = tkQuoted
			}
			out = append(out, sqlTok{kind, text})
			i = j
		case c == '@':
			j := i + 1
			if j < len(q) && q[j] == '@' {
				return nil, false // a system variable: not one of the shapes followed here
			}
			if j < len(q) && (q[j] == '`' || q[j] == '\'' || q[j] == '"') {
				quote := q[j]
				k := strings.IndexByte(q[j+1:], quote)
				if k < 0 {
					return nil, false
				}
				out = append(out, sqlTok{tkUserVar, strings.ToLower(q[j+1 : j+1+k])})
				i = j + 1 + k + 1
				continue
			}
			for j < len(q) && isIdentByte(q[j]) {
				j++
			}
			if j == i+1 {
				return nil, false
			}
			out = append(out, sqlTok{tkUserVar, strings.ToLower(q[i+1 : j])})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(q) && (isIdentByte(q[j]) || q[j] == '.') {
				j++
			}
			out = append(out, sqlTok{tkNumber, q[i:j]})
			i = j
		case isIdentByte(c):
			j := i
			for j < len(q) && isIdentByte(q[j]) {
				j++
			}
			out = append(out, sqlTok{tkWord, q[i:j]})
			i = j
		case c == ':' && i+1 < len(q) && q[i+1] == '=':
			out = append(out, sqlTok{tkEq, ":="})
			i += 2
		default:
			kind := tkOther
			switch c {
			case '=':
				kind = tkEq
			case ',':
				kind = tkComma
			case '.':
				kind = tkDot
			case '(':
				kind = tkLParen
			case ')':
				kind = tkRParen
			case '+', '-':
				kind = tkSign
			}
			out = append(out, sqlTok{kind, q[i : i+1]})
			i++
		}
	}
	return out, true
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
