package router

import "strings"

// The MySQL token scanner: one pass over a statement's tokens that finds locking clauses,
// INTO, user variables, node-state reads, write keywords and every name called as a function.
//
// MySQL reserves FOR, LOCK, INTO, UPDATE, DELETE, INSERT and REPLACE: unquoted, they are
// always keywords, so (unlike in PostgreSQL) their presence alone decides. The only hard
// question is whether "name (" is a call. The lexical rules settle it when the name is a known
// built-in, a special function, a reserved word or an allow-listed function. The structural
// rules, which look at the grammatical position (a CTE's column list, a derived table's column
// list after AS or ')', a type after AS / RETURNING, in a JSON_TABLE column list or as CONVERT's
// second argument), run only in the structural pass (myEnv.full); the lexical pass gives up
// (bail) where they would be needed.

// myStmt is one statement: the tokens between two top-level semicolons.
type myStmt struct {
	src  string
	toks []myTok
}

func (s myStmt) kind(i int) myKind {
	if i < 0 || i >= len(s.toks) {
		return 0
	}
	return s.toks[i].kind
}

// kw returns the keyword code of token i (kwNone if it is not a known word).
func (s myStmt) kw(i int) myKw {
	if i < 0 || i >= len(s.toks) || s.toks[i].kind != mkWord {
		return kwNone
	}
	return s.toks[i].kw
}

func (s myStmt) text(i int) string {
	if i < 0 || i >= len(s.toks) {
		return ""
	}
	return s.src[s.toks[i].pos:s.toks[i].end]
}

// isWord reports whether token i is the unquoted word w (lower case).
func (s myStmt) isWord(i int, w string) bool {
	return s.kind(i) == mkWord && strings.EqualFold(s.text(i), w)
}

// isName reports whether token i can be an identifier.
func (s myStmt) isName(i int) bool {
	k := s.kind(i)
	return k == mkWord || k == mkQIdent || k == mkDQ
}

// myEnv is what classifying needs besides the text.
type myEnv struct {
	allow map[string]struct{} // lower-case names of allow-listed stored functions
	full  bool                // structural pass: apply the grammar-position rules
}

// Severity of the reasons a scan may find; the most severe one names the verdict.
const (
	rkWrite = iota + 1
	rkLock
	rkInto
	rkCalc
	rkAdvisory
	rkUserVar
	rkFunc
	rkNode
	rkLast // the diagnostics of the session's previous statement (LastStatementReason)
)

// myFacts is what a scan found.
type myFacts struct {
	hard      string // reason of the most severe primary-only construct
	rank      int
	soft      string // first unknown function: primary, but a replica hint may override
	pin       Pin
	unlockAll bool // RELEASE_ALL_LOCKS() is called
	bad       bool // unbalanced parentheses: the server rejects the statement
	bail      bool // lexical pass: the structural pass must decide
}

func (f *myFacts) setHard(reason string, rank int) {
	if f.hard == "" || rank < f.rank {
		f.hard, f.rank = reason, rank
	}
}

func (f *myFacts) unknown(name string) {
	if f.soft == "" {
		f.soft = "unknown-function:" + name
	}
}

// Parenthesis frames.
const (
	frPlain     uint8 = iota // grouping, subquery, argument list
	frJSONTable              // JSON_TABLE(...)
	frColumns                // JSON_TABLE's COLUMNS (...)
	frConvert                // CONVERT(...)
)

// CTE head states of a frame: WITH [RECURSIVE] name [(cols)] AS (body) [, ...] main-query.
const (
	cteNone uint8 = iota
	cteName
	cteAfterName
	cteInCols
	cteAfterCols
	cteAfterAs
	cteInBody
	cteAfterBody
)

type myFrame struct {
	kind uint8
	cte  uint8
}

// scan scans tokens [from, to) of s. With effectsOnly, only the pins matter (the statement
// goes to the primary anyway): unknown names are not looked at and the scan never bails.
func (e *myEnv) scan(s myStmt, from, to int, effectsOnly bool) (f myFacts) {
	var stackBuf [16]myFrame
	st := append(stackBuf[:0], myFrame{})
	for i := from; i < to; i++ {
		t := s.toks[i]
		top := &st[len(st)-1]
		if top.cte != cteNone && cteStep(s, i, top) {
			if t.kind == mkLParen {
				st = append(st, myFrame{})
			}
			continue
		}
		switch t.kind {
		case mkWord:
			i = e.word(s, i, from, to, &f, top)
		case mkUserVar:
			f.setHard("user-variable", rkUserVar)
			if s.kind(i+1) == mkAssign {
				f.pin |= PinUserVar
				i++
			}
		case mkAssign:
			f.setHard("user-variable", rkUserVar)
			f.pin |= PinUserVar
		case mkSysVar:
			if r := myNodeVarReason(s.text(i)); r != "" {
				rank := rkNode
				if strings.HasPrefix(r, LastStatementReason) {
					rank = rkLast
				}
				f.setHard(r, rank)
			}
		case mkLParen:
			kind := frPlain
			if i > from {
				kind = e.paren(s, i, top, &f, effectsOnly)
			}
			st = append(st, myFrame{kind: kind})
			if f.bail {
				return f
			}
		case mkRParen:
			if len(st) == 1 {
				f.bad = true
				return f
			}
			st = st[:len(st)-1]
			switch p := &st[len(st)-1]; p.cte {
			case cteInCols:
				p.cte = cteAfterCols
			case cteInBody:
				p.cte = cteAfterBody
			}
		}
	}
	if len(st) != 1 {
		f.bad = true
	}
	return f
}

// cteStep advances the CTE head state of frame top over token i; it reports whether the token
// belonged to the head (a '(' it consumed opens a frame for the column list or the body).
func cteStep(s myStmt, i int, top *myFrame) bool {
	switch t := s.toks[i]; top.cte {
	case cteName:
		if s.isName(i) {
			top.cte = cteAfterName
			return true
		}
	case cteAfterName:
		if t.kind == mkLParen {
			top.cte = cteInCols
			return true
		}
		if s.kw(i) == kwAs {
			top.cte = cteAfterAs
			return true
		}
	case cteAfterCols:
		if s.kw(i) == kwAs {
			top.cte = cteAfterAs
			return true
		}
	case cteAfterAs:
		if t.kind == mkLParen {
			top.cte = cteInBody
			return true
		}
	case cteAfterBody:
		if t.kind == mkComma {
			top.cte = cteName
			return true
		}
	}
	top.cte = cteNone // the main query (or something the server rejects) begins
	return false
}

// word handles the unquoted word at i and returns the index of the last token it consumed.
func (e *myEnv) word(s myStmt, i, from, to int, f *myFacts, top *myFrame) int {
	switch s.toks[i].kw {
	case kwFor:
		switch s.kw(i + 1) {
		case kwUpdate, kwShare, kwNo: // FOR UPDATE, FOR SHARE; FOR NO KEY UPDATE is rejected anyway
			f.setHard("locking-clause", rkLock)
			return i + 1
		}
	case kwLock: // LOCK IN SHARE MODE
		f.setHard("locking-clause", rkLock)
	case kwInto: // INTO @v, ..., INTO OUTFILE / DUMPFILE, INTO local_var
		f.setHard("select-into", rkInto)
		for j := i + 1; j < to && (s.kind(j) == mkUserVar || s.kind(j) == mkComma); j++ {
			if s.kind(j) == mkUserVar {
				f.pin |= PinUserVar
			}
		}
	case kwSQLCalcFoundRows:
		f.setHard("sql-calc-found-rows", rkCalc)
		f.pin |= PinOther
	case kwUpdate, kwDelete:
		f.setHard("write", rkWrite) // WITH ... UPDATE / DELETE
	case kwInsert, kwReplace:
		if s.kind(i+1) != mkLParen { // INSERT(str, ...) and REPLACE(str, ...) are string functions
			f.setHard("write", rkWrite)
		}
	case kwWith:
		if (i == from || s.kind(i-1) == mkLParen) && s.isName(i+1) && s.kw(i+1) != kwRollup {
			top.cte = cteName
			if s.kw(i+1) == kwRecursive {
				return i + 1
			}
		}
	case kwNext, kwPrevious: // MariaDB NEXT VALUE FOR seq, PREVIOUS VALUE FOR seq
		if s.kw(i+1) == kwValue && s.kw(i+2) == kwFor {
			name := "nextval"
			if s.toks[i].kw == kwPrevious {
				name = "lastval"
			}
			f.setHard(myDenyReason[name], rkFunc)
			return i + 2
		}
	case kwNone:
		// MariaDB's Oracle mode: seq.nextval, seq.currval
		if t := s.toks[i]; t.fn&mfSpecial != 0 && s.kind(i-1) == mkDot && s.kind(i+1) != mkLParen {
			if name := strings.ToLower(s.text(i)); name == "nextval" || name == "currval" || name == "lastval" {
				f.setHard(myDenyReason[name], rkFunc)
			}
		}
	case kwPerformanceSchema:
		if s.kind(i+1) == mkDot {
			f.setHard("node-state", rkNode)
		}
	case kwInformationSchema:
		if s.kind(i+1) == mkDot && s.kind(i+2) == mkWord {
			var buf [32]byte
			if lw, ok := myLower(s.text(i+2), buf[:]); ok {
				if _, node := myNodeTables[string(lw)]; node {
					f.setHard("node-state", rkNode)
				}
			}
		}
	}
	return i
}

// paren decides what the '(' at i opens: a call (whose effect it records), or syntax. top is
// the frame the '(' is in.
func (e *myEnv) paren(s myStmt, i int, top *myFrame, f *myFacts, effectsOnly bool) uint8 {
	j := i - 1
	if !s.isName(j) {
		return frPlain
	}
	if s.kind(j-1) == mkDot {
		if effectsOnly {
			return frPlain
		}
		e.qualifiedCall(s, j, f) // db.fn(...): a stored function
		return frPlain
	}
	if s.kind(j) != mkWord { // `name`(...) or "name"(...)
		name := strings.ToLower(myUnquote(s.text(j)))
		if k, special := mySpecialFuncs[name]; special {
			e.special(k, name, f)
			return frPlain
		}
		if effectsOnly || e.structural(s, j, top, f, false) {
			return frPlain
		}
		if !e.full {
			f.bail = true
			return frPlain
		}
		if _, allowed := e.allow[name]; !allowed {
			f.unknown(name) // a quoted name is never taken for a built-in
		}
		return frPlain
	}
	t := s.toks[j]
	switch {
	case t.fn&mfSpecial != 0:
		name := strings.ToLower(s.text(j))
		e.special(mySpecialFuncs[name], name, f)
		return frPlain
	case t.kw == kwJSONTable:
		return frJSONTable
	case t.kw == kwConvert:
		return frConvert
	case t.fn&mfSafe != 0 && (t.fn&mfSym == 0 || t.end == s.toks[i].pos):
		return frPlain
	case t.fn&mfSyntax != 0:
		return frPlain
	}
	prev := s.kind(j - 1)
	if t.kw == kwColumns && (prev == mkString || prev == mkDQ) {
		return frColumns // JSON_TABLE(expr, path COLUMNS (...)), NESTED PATH path COLUMNS (...)
	}
	if (t.kw == kwAny || t.kw == kwSome) && prev == mkOp {
		return frPlain // x > ANY (subquery)
	}
	if effectsOnly {
		return frPlain
	}
	var buf [64]byte
	lw, ok := myLower(s.text(j), buf[:])
	if !ok {
		f.unknown(strings.ToLower(s.text(j)[:64]))
		return frPlain
	}
	if _, allowed := e.allow[string(lw)]; allowed {
		return frPlain
	}
	if e.structural(s, j, top, f, true) {
		return frPlain
	}
	f.unknown(string(lw))
	return frPlain
}

// structural applies the grammar-position rules to the name at j followed by '(': it reports
// whether the parenthesis is a column list or a type's length rather than a call. In the
// lexical pass, a rule that applies makes the scan bail instead.
func (e *myEnv) structural(s myStmt, j int, top *myFrame, f *myFacts, unquoted bool) bool {
	applies := false
	switch prev := s.kind(j - 1); {
	case s.kw(j-1) == kwAs || s.kw(j-1) == kwReturning:
		applies = true // derived table "AS t (a, b)", CAST(x AS type(n)), RETURNING type(n)
	case prev == mkRParen:
		applies = true // derived table "(subquery) t (a, b)"
	case unquoted && top.kind == frColumns && (prev == mkWord || prev == mkQIdent):
		applies = s.toks[j].fn&mfType != 0 // JSON_TABLE column "name DATETIME(6) PATH ..."
	case unquoted && top.kind == frConvert && prev == mkComma:
		applies = s.toks[j].fn&mfType != 0 // CONVERT(x, DATETIME(6))
	}
	if applies && !e.full {
		f.bail = true
	}
	return applies
}

// qualifiedCall records a call of db.fn(...) whose name ends at j.
func (e *myEnv) qualifiedCall(s myStmt, j int, f *myFacts) {
	if !s.isName(j-2) || s.kind(j-3) == mkDot {
		f.unknown(strings.ToLower(myUnquote(s.text(j))))
		return
	}
	name := strings.ToLower(myUnquote(s.text(j-2)) + "." + myUnquote(s.text(j)))
	if _, ok := e.allow[name]; !ok {
		f.unknown(name)
	}
}

// special records a call of a function of mySpecialFuncs.
func (e *myEnv) special(k myFnKind, name string, f *myFacts) {
	switch k {
	case myFnDeny:
		if r := myDenyReason[name]; strings.HasPrefix(r, LastStatementReason) {
			f.setHard(r, rkLast)
		} else {
			f.setHard(r, rkFunc)
		}
	case myFnLock:
		f.setHard("advisory-lock", rkAdvisory)
		f.pin |= PinAdvisoryLock
	case myFnUnlockAll:
		f.setHard("advisory-lock", rkAdvisory)
		f.unlockAll = true
	case myFnLockOther:
		f.setHard("advisory-lock", rkAdvisory)
	}
}

// myDenyReason holds "volatile-function:name" for every deny function, built once so that
// classifying does not allocate it.
var myDenyReason = func() map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(myDenyFuncs) {
		m[f] = "volatile-function:" + f
	}
	for _, f := range strings.Fields(myLastStatementFuncs) {
		m[f] = LastStatementReason + f
	}
	return m
}()

// myNodeVarReasons holds "node-variable:name" for every node variable.
var myNodeVarReasons = func() map[string]string {
	m := map[string]string{}
	for _, v := range strings.Fields(myNodeVars) {
		m[v] = "node-variable:" + v
	}
	for _, v := range strings.Fields(myLastStatementVars) {
		m[v] = LastStatementReason + v
	}
	return m
}()

// myNodeVarReason returns the reason for reading the system variable tok (@@[scope.]name), or
// "" when it does not depend on the node.
func myNodeVarReason(tok string) string {
	name := tok[2:]
	if name == "" {
		return "node-variable" // "@@ name": the name is a separate token
	}
	if k := strings.IndexByte(name, '.'); k >= 0 {
		switch scope := name[:k]; {
		case strings.EqualFold(scope, "global"), strings.EqualFold(scope, "session"),
			strings.EqualFold(scope, "local"), strings.EqualFold(scope, "persist"),
			strings.EqualFold(scope, "persist_only"):
			name = name[k+1:]
		}
	}
	var buf [40]byte
	lw, ok := myLower(name, buf[:])
	if !ok {
		return ""
	}
	return myNodeVarReasons[string(lw)]
}

// myUnquote returns the name inside `..` or "..", undoubling quotes; other text as is.
func myUnquote(s string) string {
	if len(s) >= 2 && (s[0] == '`' || s[0] == '"') && s[len(s)-1] == s[0] {
		q := s[:1]
		return strings.ReplaceAll(s[1:len(s)-1], q+q, q)
	}
	return s
}
