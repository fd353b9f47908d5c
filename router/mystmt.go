package router

// Statement-level decisions for MySQL / MariaDB: the first word picks the handler.

// myVerdict is one statement's Class plus what combining verdicts needs.
type myVerdict struct {
	Class
	soft     bool // primary only for an unknown function: a replica hint may override
	bad      bool // the server rejects the statement (for a whole text: the first one), so it does not run
	compound bool // CREATE PROCEDURE / FUNCTION / TRIGGER / EVENT, BEGIN NOT ATOMIC: later pieces may be its body
}

func myP(reason string) myVerdict { return myVerdict{Class: Class{Route: Primary, Reason: reason}} }
func myR(reason string) myVerdict { return myVerdict{Class: Class{Route: Replica, Reason: reason}} }

// myBad is the verdict for a statement the server rejects: nothing runs.
func myBad() myVerdict {
	v := myP("parse-error")
	v.bad = true
	return v
}

// myMaxDepth bounds statements nested by EXPLAIN and SET STATEMENT ... FOR.
const myMaxDepth = 3

// stmt classifies the statement of s that starts at token i. ok is false when the lexical
// pass cannot decide it.
func (e *myEnv) stmt(s myStmt, i, depth int) (v myVerdict, ok bool) {
	if i >= len(s.toks) || depth > myMaxDepth {
		return myBad(), true
	}
	if s.kind(i) == mkLParen {
		return e.read(s, i, "select")
	}
	switch s.kw(i) {
	case kwSelect, kwTable, kwValues, kwWith:
		return e.read(s, i, "select")
	case kwShow:
		return e.show(s, i)
	case kwExplain, kwDescribe, kwDesc:
		return e.explain(s, i, depth)
	case kwAnalyze:
		if s.kw(i+1) == kwTable || s.kw(i+2) == kwTable {
			return myP("admin"), true // ANALYZE [NO_WRITE_TO_BINLOG | LOCAL] TABLE
		}
		return e.explain(s, i, depth) // MariaDB ANALYZE [FORMAT=...] statement: runs it
	case kwHelp:
		return myR("help"), true
	case kwBegin:
		return myBegin(s, i), true
	case kwStart:
		return myStart(s, i), true
	case kwCommit, kwRollback:
		return myTxEnd(s, i), true
	case kwSavepoint:
		return mySavepoint(s, i+1), true
	case kwRelease:
		if s.kw(i+1) != kwSavepoint {
			return myBad(), true
		}
		return mySavepoint(s, i+2), true
	case kwXa:
		return myXA(s, i), true
	case kwSet:
		return e.set(s, i, depth)
	case kwUse:
		if len(s.toks) != i+2 || !s.isName(i+1) {
			return myBad(), true
		}
		v = myP("use")
		v.SessionState = true
		return v, true
	}
	return e.other(s, i), true
}

// other classifies statements that always run on the primary.
func (e *myEnv) other(s myStmt, i int) myVerdict {
	var v myVerdict
	switch s.kw(i) {
	case kwInsert, kwReplace, kwUpdate, kwDelete:
		v = e.withEffects(s, i, "write")
	case kwLoad:
		if s.kw(i+1) == kwIndex {
			return myP("admin") // LOAD INDEX INTO CACHE
		}
		v = e.withEffects(s, i, "write") // LOAD DATA / LOAD XML
		for j := i + 1; j < len(s.toks) && j < i+5; j++ {
			if s.kw(j) == kwLocal {
				v.CopyIn = true // the client sends the file (LOCAL INFILE)
			}
		}
	case kwCall:
		v = e.withEffects(s, i, "call")
		if hasUserVar(s, i) {
			v.Pin |= PinUserVar // OUT / INOUT parameters assign user variables
		}
	case kwDo:
		v = e.withEffects(s, i, "do")
		if isUnlockAllShape(s, i) {
			v.Unpin = PinAdvisoryLock
		}
	case kwCreate:
		return e.create(s, i)
	case kwDrop:
		switch s.kw(i + 1) {
		case kwPrepare:
			return myP("deallocate")
		case kwTemporary:
			return myP("temp-table") // other temporary tables may remain: no Unpin
		}
		return myP("ddl")
	case kwAlter, kwRename, kwTruncate, kwImport:
		return myP("ddl")
	case kwGrant, kwRevoke:
		return myP("grant")
	case kwLock:
		switch {
		case s.isWord(i+1, "instance"): // LOCK INSTANCE FOR BACKUP
			v = myP("lock-instance")
			v.Pin = PinOther
		case s.kw(i+1) == kwTable || s.isWord(i+1, "tables"):
			v = myP("lock-tables")
			v.Pin = PinLockTables
		default:
			return myBad()
		}
	case kwUnlock:
		switch {
		case len(s.toks) == i+2 && (s.kw(i+1) == kwTable || s.isWord(i+1, "tables")):
			v = myP("unlock-tables")
			v.Unpin = PinLockTables
		case len(s.toks) == i+2 && s.isWord(i+1, "instance"):
			v = myP("unlock-instance")
		default:
			return myBad()
		}
	case kwFlush:
		v = myP("admin")
		for j := i + 1; j < len(s.toks); j++ {
			if s.kw(j) == kwRead && s.kw(j+1) == kwLock || s.kw(j) == kwFor && s.kw(j+1) == kwExport {
				v.Pin = PinLockTables // FLUSH TABLES ... WITH READ LOCK / FOR EXPORT: until UNLOCK TABLES
			}
		}
	case kwBackup:
		v = myP("admin")
		if s.kw(i+1) == kwLock || s.isWord(i+1, "stage") {
			v.Pin = PinOther // MariaDB BACKUP STAGE / BACKUP LOCK: held by the session
		}
	case kwPrepare:
		if !s.isName(i+1) || s.kw(i+2) != kwFrom {
			return myBad()
		}
		v = myP("prepare")
		v.Pin = PinPrepare
	case kwExecute:
		v = e.withEffects(s, i, "execute")
	case kwDeallocate:
		return myP("deallocate") // keeps PinPrepare: other statements may remain
	case kwHandler:
		v = myP("handler")
		for j := i + 2; j < len(s.toks) && j <= i+4; j++ {
			if s.kw(j) == kwOpen {
				v.Pin = PinOther // HANDLER t OPEN: the handler lives on the node
			}
		}
	case kwGet:
		v = myP(LastStatementReason + "get-diagnostics")
		if hasUserVar(s, i) {
			v.Pin = PinUserVar // GET DIAGNOSTICS @n = NUMBER
		}
	case kwSignal, kwResignal:
		return myP("signal")
	case kwOptimize, kwRepair, kwCheck, kwChecksum, kwKill, kwReset, kwPurge, kwChange, kwStop,
		kwInstall, kwUninstall, kwShutdown, kwRestart, kwClone, kwCache, kwBinlog:
		return myP("admin")
	default:
		if s.kind(i) == mkWord && s.kind(i+1) == mkOp && s.text(i+1) == ":" && s.kw(i+2) == kwBegin {
			v = myP("compound") // label: BEGIN NOT ATOMIC ... END
			v.compound = true
			return v
		}
		v = e.withEffects(s, i, "unknown")
	}
	return v
}

// withEffects returns a primary verdict with the pins of whatever the statement calls.
func (e *myEnv) withEffects(s myStmt, i int, reason string) myVerdict {
	v := myP(reason)
	v.Pin = e.scan(s, i+1, len(s.toks), true).pin
	return v
}

func hasUserVar(s myStmt, i int) bool {
	for j := i; j < len(s.toks); j++ {
		if s.toks[j].kind == mkUserVar {
			return true
		}
	}
	return false
}

// isUnlockAllShape reports whether the statement at i is exactly SELECT / DO
// RELEASE_ALL_LOCKS() [[AS] alias]: only then is the call sure to run.
func isUnlockAllShape(s myStmt, i int) bool {
	if !s.isWord(i+1, "release_all_locks") || s.kind(i+2) != mkLParen || s.kind(i+3) != mkRParen {
		return false
	}
	rest := len(s.toks) - (i + 4)
	switch {
	case rest == 0:
		return true
	case rest == 1:
		return s.kw(i) == kwSelect && s.isName(i+4)
	case rest == 2:
		return s.kw(i) == kwSelect && s.kw(i+4) == kwAs && s.isName(i+5)
	}
	return false
}

// read classifies SELECT / WITH / TABLE / VALUES / parenthesised queries.
func (e *myEnv) read(s myStmt, i int, replicaReason string) (myVerdict, bool) {
	f := e.scan(s, i, len(s.toks), false)
	if f.bail {
		return myVerdict{}, false
	}
	switch {
	case f.bad:
		return myBad(), true
	case f.hard != "" && f.rank == rkLast && f.soft != "":
		v := myP(f.soft) // an unknown function may need the primary: not only diagnostics
		v.soft = true
		return v, true
	case f.hard != "":
		v := myP(f.hard)
		v.Pin = f.pin
		if f.unlockAll && isUnlockAllShape(s, i) {
			v.Unpin = PinAdvisoryLock
		}
		return v, true
	case f.soft != "":
		v := myP(f.soft)
		v.soft = true
		return v, true
	}
	return myR(replicaReason), true
}

// show: SHOW ... reads the catalog (replica), except the node's own state (replication,
// binary logs, sessions, status counters) and the diagnostics of the session's last statement.
func (e *myEnv) show(s myStmt, i int) (myVerdict, bool) {
	j := i + 1
	for s.kw(j) == kwFull || s.kw(j) == kwGlobal || s.kw(j) == kwSession || s.kw(j) == kwLocal ||
		s.kw(j) == kwExtended {
		j++
	}
	switch s.kw(j) {
	case kwMaster, kwBinary, kwBinlog, kwRelaylog, kwSlave, kwReplica, kwReplicas, kwProcesslist,
		kwStatus, kwEngine, kwInnodb, kwMutex, kwOpen, kwExplain, kwAnalyze, kwAll:
		return myP("show-node-state"), true
	case kwWarnings, kwErrors, kwCount:
		return myP(LastStatementReason + "show-diagnostics"), true
	case kwProfile, kwProfiles:
		return myP("show-diagnostics"), true
	}
	if j >= len(s.toks) {
		return myBad(), true
	}
	return e.read(s, j, "show")
}

// explain: EXPLAIN / DESCRIBE / DESC of a table or of a statement, and MariaDB's ANALYZE
// statement. EXPLAIN of a read is a read; EXPLAIN ANALYZE runs the statement; EXPLAIN of a
// write without ANALYZE does not run it but still goes to the primary ("explain-write").
func (e *myEnv) explain(s myStmt, i, depth int) (myVerdict, bool) {
	analyze := s.kw(i) == kwAnalyze
	j := i + 1
	for {
		switch s.kw(j) {
		case kwAnalyze:
			analyze = true
			j++
			continue
		case kwExtended, kwPartitions:
			j++
			continue
		case kwFormat:
			j++
			if s.kind(j) == mkOp && s.text(j) == "=" {
				j++
			}
			j++ // TRADITIONAL | JSON | TREE
			continue
		}
		break
	}
	into := false
	if s.kw(j) == kwInto { // MySQL 8.1: EXPLAIN FORMAT=JSON INTO @v SELECT ...
		into = true
		if j++; s.kind(j) != mkUserVar {
			return myBad(), true
		}
		j++
	}
	switch {
	case s.kw(j) == kwFor: // EXPLAIN FOR CONNECTION n: a session on this node
		return myP("show-node-state"), true
	case j >= len(s.toks):
		return myBad(), true
	case s.kind(j) == mkLParen || s.kw(j) == kwSelect || s.kw(j) == kwWith || s.kw(j) == kwTable ||
		s.kw(j) == kwValues || s.kw(j) == kwInsert || s.kw(j) == kwReplace || s.kw(j) == kwUpdate ||
		s.kw(j) == kwDelete:
		inner, ok := e.stmt(myStmt{src: s.src, toks: s.toks[j:]}, 0, depth+1)
		if !ok || inner.bad {
			return inner, ok
		}
		v := myVerdict{Class: Class{Route: inner.Route, Reason: inner.Reason, Pin: inner.Pin}, soft: inner.soft}
		switch {
		case inner.Reason == "write" && !analyze:
			v.Reason = "explain-write"
		case v.Route == Replica:
			v.Reason = "explain"
		}
		if into {
			v.Route, v.Reason, v.soft = Primary, "select-into", false
			v.Pin |= PinUserVar
		}
		return v, true
	case analyze || into:
		return myBad(), true
	}
	// DESCRIBE [db.]t [column | 'pattern']
	for k := j; k < len(s.toks); k++ {
		switch s.kind(k) {
		case mkWord, mkQIdent, mkDQ, mkString, mkDot:
		default:
			return myBad(), true
		}
	}
	return myR("describe"), true
}

// create: CREATE TEMPORARY TABLE / SEQUENCE pins; routines, triggers, events and views are not
// run by CREATE (no effects scan); CREATE TABLE ... SELECT runs its query.
func (e *myEnv) create(s myStmt, i int) myVerdict {
	if createsRoutine(s, i) {
		v := myP("ddl")
		v.compound = true
		return v
	}
	temp := false
	for j := i + 1; j < len(s.toks) && j < i+24; j++ {
		switch s.kw(j) {
		case kwTemporary:
			temp = true
		case kwView:
			return myP("ddl")
		case kwTable, kwSequence:
			v := e.withEffects(s, i, "ddl")
			if temp {
				v.Reason = "temp-table"
				v.Pin |= PinTempTable
			}
			return v
		case kwIndex, kwDatabase, kwSchema, kwUser, kwRole:
			return myP("ddl")
		}
	}
	return myP("ddl")
}
