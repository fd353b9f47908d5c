package router

import (
	"math"
	"slices"
	"strings"
	"sync"
)

// MyClassifier classifies MySQL / MariaDB statement texts (COM_QUERY strings, possibly with
// several statements, and COM_STMT_PREPARE texts).
//
// Rules, failing closed (whatever is not provably read-only goes to the primary):
//   - Replica: SELECT (WITH, UNION / INTERSECT / EXCEPT, window functions, JSON_TABLE,
//     LATERAL), TABLE, VALUES, SHOW (except the node's own state: replication, binary logs,
//     PROCESSLIST, STATUS — "show-node-state" — PROFILE — "show-diagnostics" — and the last
//     statement's WARNINGS / ERRORS — LastStatementReason), DESCRIBE, EXPLAIN [ANALYZE] of a read, HELP, START
//     TRANSACTION READ ONLY — when they lock nothing (FOR UPDATE / FOR SHARE / LOCK IN SHARE
//     MODE), write nothing (INTO @v / OUTFILE / DUMPFILE), touch no user variable, do not use
//     SQL_CALC_FOUND_ROWS, read no node-specific system variable (@@server_id, @@read_only,
//     @@identity ...) or performance_schema table, and call only built-ins known to be safe
//     on a replica (SLEEP, RAND, UUID and BENCHMARK are) or allow-listed stored functions.
//   - EXPLAIN of a write without ANALYZE does not run it but still routes to the primary
//     ("explain-write"); DO always does ("do").
//   - Functions: GET_LOCK pins (PinAdvisoryLock), SELECT / DO RELEASE_ALL_LOCKS() unpins;
//     RELEASE_LOCK, IS_USED_LOCK, IS_FREE_LOCK are "advisory-lock"; LAST_INSERT_ID,
//     sequences (NEXTVAL, NEXT VALUE FOR, LASTVAL, SETVAL), CONNECTION_ID, LOAD_FILE and
//     the replication waits are "volatile-function:name"; FOUND_ROWS(), ROW_COUNT(),
//     @@warning_count, @@error_count, SHOW WARNINGS / ERRORS and GET DIAGNOSTICS read the
//     previous statement's outcome (LastStatementReason + name, see ReadsLastStatement); any
//     other name is "unknown-function:name" (a replica hint may override only this).
//   - Transactions: BEGIN [WORK], START TRANSACTION [...] (TxBegin, or TxBeginReadOnly for
//     READ ONLY), COMMIT / ROLLBACK (TxEnd), ROLLBACK TO / SAVEPOINT / RELEASE SAVEPOINT
//     (TxNone), XA START (TxBegin) and XA COMMIT / ROLLBACK (TxEnd).
//   - Session state (replayed): SET [SESSION] var, SET @@var, SET NAMES / CHARACTER SET, SET
//     ROLE, SET SESSION TRANSACTION, USE db. SET GLOBAL / PERSIST and SET TRANSACTION (next
//     transaction only) are not. SET @v pins (PinUserVar). A session SET whose value reads a
//     user or node variable or calls a non-built-in function cannot be replayed: PinOther.
//   - Pins: CREATE TEMPORARY TABLE (DROP TEMPORARY TABLE keeps it), LOCK TABLES and FLUSH
//     TABLES WITH READ LOCK (UNLOCK TABLES unpins), PREPARE (DEALLOCATE keeps it), GET_LOCK,
//     SQL_CALC_FOUND_ROWS and HANDLER ... OPEN (PinOther), user variables.
//
// Comments follow the server: "-- " needs a blank, "#" comments, and the content of
// executable comments (/*! ... */, /*!40101 ... */, MariaDB's /*M! ... */) is SQL. Where the
// text reads differently depending on the server or the session (a versioned comment from
// 5.7.0 on, which MariaDB skips; a backslash in a quoted string under NO_BACKSLASH_ESCAPES or
// ANSI_QUOTES), every reading is classified and the most cautious verdict wins.
//
// A text of several statements is Multi; it is replica only if every statement is, with the
// union of the pins. Transaction control in it makes it primary. It is session state only if
// every statement is (replaying it must not run anything else); otherwise it is not replayed
// and pins (PinOther). Semicolons inside the BEGIN ... END body of CREATE PROCEDURE /
// FUNCTION / TRIGGER / EVENT and BEGIN NOT ATOMIC do not split. After a statement the server
// rejects, or after a routine whose body could not be matched, later statements unpin nothing
// and their session state is not replayed but pins (PinOther).
//
// Classify is safe for concurrent use: the lexical pass takes no lock; texts that need the
// structural rules (derived-table column lists, types after AS / RETURNING and in JSON_TABLE
// columns, quoted function names) are cached by text.
type MyClassifier struct {
	allow      map[string]struct{}
	cache      *classCache
	structOnly bool // tests: skip the lexical pass
}

// LastStatementReason prefixes the Reason of a statement whose only primary-only part is that
// it reads the outcome of the session's previous statement (FOUND_ROWS(), ROW_COUNT(),
// @@warning_count, @@error_count, SHOW WARNINGS / ERRORS / COUNT(*) WARNINGS, GET DIAGNOSTICS).
const LastStatementReason = "last-statement:"

// ReadsLastStatement reports whether c (a MyClassifier verdict) is a single statement that
// reads the outcome of the session's previous statement and nothing else that needs the
// primary: it must run on the node that ran the previous statement.
func ReadsLastStatement(c Class) bool {
	return !c.Multi && !c.Hint && strings.HasPrefix(c.Reason, LastStatementReason)
}

// MyOption configures a MyClassifier.
type MyOption func(*MyClassifier)

// WithAllowedFunctions allow-lists stored functions as read-only. Names are case-insensitive;
// "fn" matches unqualified calls fn(...), "db.fn" matches db.fn(...) (the classifier does not
// know the session's default database). Built-ins that must run on the primary (GET_LOCK,
// LAST_INSERT_ID ...) cannot be allow-listed.
func WithAllowedFunctions(names ...string) MyOption {
	return func(c *MyClassifier) {
		for _, n := range names {
			n = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(n), "`", ""))
			if n != "" {
				c.allow[n] = struct{}{}
			}
		}
	}
}

// NewMyClassifier returns a classifier that caches up to cacheSize texts decided by the
// structural rules (<= 0: no cache).
func NewMyClassifier(cacheSize int, opts ...MyOption) *MyClassifier {
	c := &MyClassifier{allow: map[string]struct{}{}, cache: newClassCache(cacheSize)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Classify returns the routing class of sql. It never panics and never fails: whatever it
// cannot prove read-only routes to the primary.
func (c *MyClassifier) Classify(sql string) Class {
	if !c.structOnly {
		if cl, ok := c.classify(sql, false); ok {
			return cl
		}
	}
	if cl, ok := c.cache.get(sql); ok {
		return cl
	}
	cl, _ := c.classify(sql, true)
	c.cache.put(sql, cl)
	return cl
}

// myTokPool recycles token buffers between classifications.
var myTokPool = sync.Pool{New: func() any { b := make([]myTok, 0, 64); return &b }}

// classify classifies sql. With full false (the lexical pass), ok is false as soon as a
// statement needs the structural rules; with full true, ok is always true.
func (c *MyClassifier) classify(sql string, full bool) (Class, bool) {
	h := myHintOf(sql)
	if len(sql) > math.MaxInt32 {
		return applyHint(myP("too-long").Class, false, h), true
	}
	e := myEnv{allow: c.allow, full: full}
	bp := myTokPool.Get().(*[]myTok)
	defer func() {
		if cap(*bp) <= maxPooledToks {
			myTokPool.Put(bp)
		}
	}()
	modes, nm := myModes(sql)
	var out myVerdict
	for k := 0; k < nm; k++ {
		toks := lexMy(sql, (*bp)[:0], modes[k])
		*bp = toks
		v, ok := e.text(sql, toks)
		if !ok {
			return Class{}, false
		}
		if k == 0 {
			out = v
		} else {
			out = myMerge(out, v)
		}
	}
	soft := out.soft && out.Pin == 0 && out.Unpin == 0 && !out.SessionState && out.Tx == TxNone
	return applyHint(out.Class, soft, h), true
}

// myModes returns the readings of sql to classify: the server default, plus
// NO_BACKSLASH_ESCAPES and ANSI_QUOTES when a backslash could change where a quoted token
// ends, each with and without the conditional executable comments when there are any.
func myModes(sql string) (modes [6]myLexMode, n int) {
	var esc [3]myLexMode
	ne := 1
	if strings.IndexByte(sql, '\\') >= 0 {
		esc[ne] = myLexMode{noSQEscape: true, noDQEscape: true}
		ne++
		if strings.IndexByte(sql, '"') >= 0 {
			esc[ne] = myLexMode{noDQEscape: true}
			ne++
		}
	}
	cond := hasCondComment(sql)
	for _, m := range esc[:ne] {
		modes[n] = m
		n++
		if cond {
			m.skipCond = true
			modes[n] = m
			n++
		}
	}
	return modes, n
}

// hasCondComment reports whether sql may hold a conditional comment (/*!NNNNN with NNNNN >=
// 50700, /*M!), wherever it is (a reading may find it outside a string).
func hasCondComment(sql string) bool {
	for i := 0; ; {
		k := strings.Index(sql[i:], "/*")
		if k < 0 {
			return false
		}
		i += k + 2
		if i < len(sql) && (sql[i] == 'M' || sql[i] == 'm') && i+1 < len(sql) && sql[i+1] == '!' {
			return true
		}
		if i < len(sql) && sql[i] == '!' {
			d := 0
			for i+1+d < len(sql) && d < 6 && isDigit(sql[i+1+d]) {
				d++
			}
			if d == 6 || d == 5 && myVersionCond(sql[i+1:i+6]) {
				return true
			}
		}
	}
}

// text splits toks into statements at top-level semicolons (a compound statement's body
// holds semicolons of its own) and combines their verdicts.
func (e *myEnv) text(sql string, toks []myTok) (myVerdict, bool) {
	var a myAccum
	for start := 0; start < len(toks); {
		k := myStmtEnd(myStmt{src: sql, toks: toks[start:]}) + start
		if k > start {
			s := myStmt{src: sql, toks: toks[start:k]}
			v := myBad()
			if toks[k-1].kind != mkBad {
				var ok bool
				if v, ok = e.stmt(s, 0, 0); !ok {
					return v, false
				}
			}
			a.add(v)
		}
		start = k + 1
	}
	return a.result(), true
}

// myStmtEnd returns the index of the semicolon that ends the first statement of s (or
// len(s.toks)). After the head of a compound statement (CREATE PROCEDURE / FUNCTION /
// TRIGGER / EVENT, BEGIN NOT ATOMIC, label: BEGIN), semicolons inside BEGIN ... END and CASE
// ... END blocks belong to the body.
func myStmtEnd(s myStmt) int {
	compound := s.kw(0) == kwBegin && s.kw(1) == kwNot && s.kw(2) == kwAtomic ||
		s.kind(0) == mkWord && s.kind(1) == mkOp && s.text(1) == ":" && s.kw(2) == kwBegin
	if s.kw(0) == kwCreate {
		compound = createsRoutine(s, 0)
	}
	depth := 0
	for k, t := range s.toks {
		switch {
		case t.kind == mkSemi:
			if depth <= 0 {
				return k
			}
		case !compound || t.kind != mkWord:
		case t.kw == kwBegin || t.kw == kwCase:
			depth++
		case t.kw == kwEnd:
			switch s.kw(k + 1) {
			case kwIf, kwLoop, kwWhile, kwRepeat, kwFor: // END IF / LOOP / WHILE / REPEAT / FOR: not counted
			default: // END, END CASE, END label
				depth--
			}
		}
	}
	return len(s.toks)
}

// createsRoutine reports whether the CREATE statement at i creates a stored program (whose
// body CREATE does not run).
func createsRoutine(s myStmt, i int) bool {
	for j := i + 1; j < len(s.toks) && j < i+24; j++ {
		switch s.kw(j) {
		case kwProcedure, kwFunction, kwTrigger, kwEvent, kwPackage:
			return true
		case kwTable, kwSequence, kwView, kwIndex, kwDatabase, kwSchema, kwUser, kwRole:
			return false
		}
	}
	return false
}

// myAccum combines the verdicts of the statements of one text, in order.
type myAccum struct {
	n         int
	out       myVerdict
	unpin     Pin
	allRep    bool // every statement is replica
	allSoft   bool // every primary statement is soft
	allRead   bool // every statement but transaction control is a plain replica read
	allSess   bool // every statement is session state
	anyTx     bool
	anySess   bool
	anyBad    bool
	firstBad  bool
	body      bool // a compound statement was seen: later pieces may be its body
	broken    bool // a rejected statement was seen: later pieces do not run
	primaryBy string
	firstBy   string
}

func (a *myAccum) add(v myVerdict) {
	if a.body || a.broken {
		// The statement may be part of a routine body, or may not run: it unpins nothing, and
		// its session state (if any) is not replayed but keeps the session on the primary.
		if v.SessionState {
			v.SessionState = false
			v.Pin |= PinOther
		}
		v.Unpin, v.Tx = 0, TxNone
	}
	if a.n == 0 {
		a.allRep, a.allSoft, a.allRead, a.allSess = true, true, true, true
		a.firstBy, a.firstBad = v.Reason, v.bad
	}
	a.n++
	plainRead := v.Route == Replica && v.Pin == 0 && v.Tx == TxNone
	if v.Route != Replica {
		a.allRep = false
		a.allSoft = a.allSoft && v.soft
		if a.primaryBy == "" {
			a.primaryBy = v.Reason
		}
	}
	if v.Tx != TxNone {
		a.anyTx = true
		a.out.Tx = v.Tx
	} else if !plainRead {
		a.allRead = false
	}
	a.anySess = a.anySess || v.SessionState
	a.allSess = a.allSess && v.SessionState
	a.anyBad = a.anyBad || v.bad
	a.broken = a.broken || v.bad
	a.body = a.body || v.compound
	a.out.SessionState = a.out.SessionState || v.SessionState
	a.out.Pin |= v.Pin
	a.unpin |= v.Unpin
	a.out.CopyIn = a.out.CopyIn || v.CopyIn
}

// result: replica only if every statement is; transaction control in a multi-statement text,
// or a statement the server rejects, makes the whole text primary.
func (a *myAccum) result() myVerdict {
	v := a.out
	switch {
	case a.n == 0:
		return myP("empty")
	case a.anyBad:
		v.Route, v.Reason, v.bad = Primary, "parse-error", a.firstBad
	case a.n > 1 && a.anyTx:
		v.Route, v.Reason = Primary, a.primaryBy
		if v.Reason == "" {
			v.Reason = "multi-tx"
		}
		if v.Tx == TxBeginReadOnly && !a.allRead {
			v.Tx = TxBegin
		}
	case a.allRep:
		v.Route, v.Reason = Replica, a.firstBy
	default:
		v.Route, v.Reason, v.soft = Primary, a.primaryBy, a.allSoft
	}
	if a.n > 1 && a.anySess && !a.allSess {
		v.SessionState = false // replaying the text would run its other statements again
		v.Pin |= PinOther
	}
	v.Unpin = a.unpin &^ v.Pin
	v.Multi = a.n > 1
	return v
}

// myMerge combines the verdicts of two readings of one text: the most cautious wins. A
// reading in which the server rejects the first statement runs nothing and does not count.
func myMerge(a, b myVerdict) myVerdict {
	if a.bad != b.bad {
		if a.bad {
			return b
		}
		return a
	}
	if a == b {
		return a
	}
	v := a
	if a.Route == Replica && b.Route != Replica {
		v.Route, v.Reason = Primary, b.Reason
	}
	v.soft = v.Route == Primary && (a.Route == Replica || a.soft) && (b.Route == Replica || b.soft)
	v.Pin = a.Pin | b.Pin
	v.Unpin = a.Unpin & b.Unpin
	if a.SessionState != b.SessionState {
		v.SessionState = false
		v.Pin |= PinOther
	}
	if a.Tx != b.Tx {
		if v.Route == Replica {
			v.Reason = "ambiguous"
		}
		v.Route, v.soft = Primary, false
		switch {
		case a.Tx == TxBegin || b.Tx == TxBegin || a.Tx == TxBeginReadOnly || b.Tx == TxBeginReadOnly:
			v.Tx = TxBegin
		default:
			v.Tx = TxEnd
		}
	}
	v.Unpin &^= v.Pin
	v.Multi = a.Multi || b.Multi
	v.CopyIn = a.CopyIn || b.CopyIn
	return v
}

// MyUserVars returns the user variables (@name, @`name`, @'name', @"name", as written) that
// the MySQL statement text sql names, each once, in order of first appearance. For GET
// DIAGNOSTICS these are the variables it assigns.
func MyUserVars(sql string) []string {
	var out []string
	for _, t := range lexMy(sql, nil, myLexMode{}) {
		if t.kind != mkUserVar {
			continue
		}
		if v := sql[t.pos:t.end]; !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
