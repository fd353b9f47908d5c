package router

import "strings"

// Transaction control and SET for MySQL / MariaDB.

// myBegin: BEGIN [WORK] starts a transaction; BEGIN NOT ATOMIC (MariaDB) is a compound
// statement.
func myBegin(s myStmt, i int) myVerdict {
	n := len(s.toks)
	switch {
	case n == i+1 || n == i+2 && s.kw(i+1) == kwWork:
		v := myP("begin")
		v.Tx = TxBegin
		return v
	case s.kw(i+1) == kwNot && s.kw(i+2) == kwAtomic:
		v := myP("compound")
		v.compound = true
		return v
	}
	return myBad()
}

// myStart: START TRANSACTION [WITH CONSISTENT SNAPSHOT | READ ONLY | READ WRITE [, ...]];
// START SLAVE / REPLICA / GROUP_REPLICATION are administration.
func myStart(s myStmt, i int) myVerdict {
	if s.kw(i+1) != kwTransaction {
		return myP("admin")
	}
	n := len(s.toks)
	readOnly, readWrite := false, false
	for j := i + 2; j < n; {
		switch {
		case s.kw(j) == kwWith && s.kw(j+1) == kwConsistent && s.kw(j+2) == kwSnapshot:
			j += 3
		case s.kw(j) == kwRead && s.kw(j+1) == kwOnly:
			readOnly = true
			j += 2
		case s.kw(j) == kwRead && s.kw(j+1) == kwWrite:
			readWrite = true
			j += 2
		default:
			return myBad()
		}
		if j < n {
			if s.kind(j) != mkComma || j+1 == n {
				return myBad()
			}
			j++
		}
	}
	switch {
	case readOnly && readWrite:
		return myBad() // the server refuses both
	case readOnly:
		v := myR("begin-read-only")
		v.Tx = TxBeginReadOnly
		return v
	}
	v := myP("begin")
	v.Tx = TxBegin
	return v
}

// myTxEnd: COMMIT | ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE]; ROLLBACK [WORK] TO
// [SAVEPOINT] name only returns to a savepoint.
func myTxEnd(s myStmt, i int) myVerdict {
	n := len(s.toks)
	j := i + 1
	if s.kw(j) == kwWork {
		j++
	}
	if s.kw(i) == kwRollback && s.kw(j) == kwTo {
		j++
		if s.kw(j) == kwSavepoint {
			j++
		}
		return mySavepoint(s, j)
	}
	if s.kw(j) == kwAnd {
		j++
		if s.kw(j) == kwNo {
			j++
		}
		if s.kw(j) != kwChain {
			return myBad()
		}
		j++
	}
	if s.kw(j) == kwNo && s.kw(j+1) == kwRelease {
		j += 2
	} else if s.kw(j) == kwRelease {
		j++
	}
	if j != n {
		return myBad()
	}
	v := myP("tx-end")
	v.Tx = TxEnd
	return v
}

// mySavepoint: the savepoint name is token j and the last one.
func mySavepoint(s myStmt, j int) myVerdict {
	if j != len(s.toks)-1 || !s.isName(j) {
		return myBad()
	}
	return myP("savepoint")
}

// myXA: XA START | BEGIN begins a (distributed) transaction, XA COMMIT | ROLLBACK ends it.
func myXA(s myStmt, i int) myVerdict {
	if len(s.toks) < i+2 {
		return myBad()
	}
	v := myP("xa")
	switch s.kw(i + 1) {
	case kwStart, kwBegin:
		v.Tx = TxBegin
	case kwCommit, kwRollback:
		v.Tx = TxEnd
	}
	return v
}

// Scopes of a SET assignment.
const (
	mySetSession = iota
	mySetGlobal
	mySetUser
	mySetNextTx // @@transaction_isolation / @@transaction_read_only without a scope: next transaction only
)

// set: SET [GLOBAL | SESSION | PERSIST ...] assignments, SET NAMES / CHARACTER SET, SET
// TRANSACTION, SET ROLE, SET PASSWORD, MariaDB's SET STATEMENT ... FOR statement.
//
// Session assignments are session state (replayed on every backend). SET GLOBAL / PERSIST go
// to the primary and are not replayed; if a text mixes them with session assignments, the
// session part exists only on the primary: PinOther. User variables pin (PinUserVar). A
// session value that reads a user variable or a node variable, or calls an unknown or
// primary-only function, cannot be replayed faithfully elsewhere: PinOther instead of session
// state.
func (e *myEnv) set(s myStmt, i, depth int) (myVerdict, bool) {
	n := len(s.toks)
	j := i + 1
	switch s.kw(j) {
	case kwStatement:
		return e.setStatement(s, j+1, depth)
	case kwPassword:
		return myP("set-password"), true
	case kwTransaction: // the next transaction only
		return myP("set-transaction"), true
	case kwRole:
		v := myP("set")
		v.SessionState = true
		return v, true
	case kwDefault:
		if s.kw(j+1) == kwRole {
			return myP("grant"), true
		}
	case kwGlobal, kwPersist, kwPersistOnly:
		if s.kw(j+1) == kwTransaction {
			return myP("set-global"), true
		}
	case kwSession, kwLocal:
		if s.kw(j+1) == kwTransaction {
			v := myP("set")
			v.SessionState = true
			return v, true
		}
	}
	if s.isWord(j, "resource") && s.isWord(j+1, "group") {
		v := myP("set")
		v.Pin = PinOther // the thread's resource group on this node
		return v, true
	}
	var seen [4]bool
	var pins Pin
	unsafe := false
	scope := mySetSession
	for j < n {
		switch s.kw(j) {
		case kwGlobal, kwPersist, kwPersistOnly:
			scope = mySetGlobal
			j++
		case kwSession, kwLocal:
			scope = mySetSession
			j++
		}
		item, needEq := scope, true
		switch {
		case s.kind(j) == mkUserVar:
			item = mySetUser
			j++
		case s.kind(j) == mkSysVar:
			item = sysVarScope(s.text(j))
			j++
		case s.kw(j) == kwNames || s.kw(j) == kwCharset:
			item, needEq = mySetSession, false
			j++
		case s.kw(j) == kwCharacter && s.kw(j+1) == kwSet:
			item, needEq = mySetSession, false
			j += 2
		case s.isName(j):
			for j++; s.kind(j) == mkDot && s.isName(j+1); j += 2 { // keycache.key_buffer_size
			}
		default:
			return myBad(), true
		}
		if needEq {
			if s.kind(j) != mkAssign && !(s.kind(j) == mkOp && s.text(j) == "=") {
				return myBad(), true
			}
			j++
		}
		end := nextTopComma(s, j)
		if end == j {
			return myBad(), true
		}
		f := e.scan(s, j, end, false)
		switch {
		case f.bail:
			return myVerdict{}, false
		case f.bad:
			return myBad(), true
		}
		pins |= f.pin
		if item == mySetSession {
			if f.soft != "" || f.hard != "" {
				unsafe = true // SET sql_mode = @old, time_zone = f(): the value depends on this node
			}
		}
		seen[item] = true
		if j = end; j < n {
			if j++; j == n {
				return myBad(), true // trailing comma
			}
		}
	}
	v := myP("set")
	v.Pin = pins
	switch {
	case seen[mySetGlobal] || seen[mySetNextTx]:
		v.Reason = "set-global"
		if !seen[mySetGlobal] {
			v.Reason = "set-transaction"
		}
		if seen[mySetSession] {
			v.Pin |= PinOther // the session part exists on the primary only
		}
	case seen[mySetSession] && unsafe:
		v.Pin |= PinOther
	case seen[mySetSession]:
		v.SessionState = true
	case seen[mySetUser]:
		v.Reason = "user-variable"
	default:
		return myBad(), true
	}
	if seen[mySetUser] {
		v.Pin |= PinUserVar
	}
	return v, true
}

// setStatement: SET STATEMENT var = value [, ...] FOR statement (MariaDB). The variables hold
// for that statement only; the statement decides.
func (e *myEnv) setStatement(s myStmt, j, depth int) (myVerdict, bool) {
	depthParen := 0
	for k := j; k < len(s.toks); k++ {
		switch s.kind(k) {
		case mkLParen:
			depthParen++
		case mkRParen:
			depthParen--
		case mkWord:
			if depthParen != 0 || s.kw(k) != kwFor || k == j {
				continue
			}
			f := e.scan(s, j, k, false)
			if f.bail {
				return myVerdict{}, false
			}
			if f.bad {
				return myBad(), true
			}
			v, ok := e.stmt(myStmt{src: s.src, toks: s.toks[k+1:]}, 0, depth+1)
			if !ok || v.bad {
				return v, ok
			}
			v.Pin |= f.pin
			switch {
			case f.hard != "" && (v.Route == Replica || v.soft):
				v.Route, v.Reason, v.soft = Primary, f.hard, false
			case f.soft != "" && v.Route == Replica:
				v.Route, v.Reason, v.soft = Primary, f.soft, true
			}
			return v, true
		}
	}
	return myBad(), true
}

// nextTopComma returns the index of the first comma at parenthesis depth 0 from j, or the
// statement's end.
func nextTopComma(s myStmt, j int) int {
	depth := 0
	for ; j < len(s.toks); j++ {
		switch s.toks[j].kind {
		case mkLParen:
			depth++
		case mkRParen:
			depth--
		case mkComma:
			if depth == 0 {
				return j
			}
		}
	}
	return j
}

// sysVarScope returns the scope of an assignment to @@[scope.]name. Without a scope, the
// transaction characteristics apply to the next transaction only (like SET TRANSACTION).
func sysVarScope(tok string) int {
	name := tok[2:]
	k := strings.IndexByte(name, '.')
	if k < 0 {
		switch {
		case strings.EqualFold(name, "transaction_isolation"), strings.EqualFold(name, "tx_isolation"),
			strings.EqualFold(name, "transaction_read_only"), strings.EqualFold(name, "tx_read_only"):
			return mySetNextTx
		}
		return mySetSession
	}
	switch scope := name[:k]; {
	case strings.EqualFold(scope, "global"), strings.EqualFold(scope, "persist"),
		strings.EqualFold(scope, "persist_only"):
		return mySetGlobal
	}
	return mySetSession
}
