package router

import "strings"

// Fast path for transaction control, SET / DISCARD and CREATE.

// discardAllPins are the pins DISCARD ALL drops: it runs CLOSE ALL, RESET ALL, DEALLOCATE ALL,
// UNLISTEN *, pg_advisory_unlock_all() and DISCARD TEMP.
const discardAllPins = PinTempTable | PinListen | PinAdvisoryLock | PinPrepare | PinHoldCursor

// fastTxEnd: COMMIT / END / ABORT / ROLLBACK [TO SAVEPOINT], SAVEPOINT, RELEASE, PREPARE
// TRANSACTION, COMMIT / ROLLBACK PREPARED, and PREPARE name AS (a pin, not transaction control).
func fastTxEnd(s stmt) (verdict, bool) {
	end := primary("tx-end")
	end.Tx = TxEnd
	switch {
	case s.is(0, "savepoint"), s.is(0, "release"):
		return primary("savepoint"), true
	case s.is(0, "prepare"):
		if s.is(1, "transaction") && s.kind(2) == tkString && len(s.toks) == 3 {
			return end, true
		}
		if (s.kind(1) == tkIdent || s.kind(1) == tkQIdent) && !s.is(1, "transaction") && s.has("as") {
			v := primary("prepare")
			v.Pin = PinPrepare
			return v, true
		}
		return verdict{}, false
	case (s.is(0, "commit") || s.is(0, "rollback")) && s.is(1, "prepared"):
		return end, s.kind(2) == tkString && len(s.toks) == 3
	case s.is(0, "rollback") && s.has("to"):
		return primary("savepoint"), true
	}
	for i := 1; i < len(s.toks); i++ {
		if !s.is(i, "work") && !s.is(i, "transaction") && !s.is(i, "and") && !s.is(i, "no") && !s.is(i, "chain") {
			return verdict{}, false
		}
	}
	return end, true
}

// fastSet: SET [SESSION | LOCAL] ..., SET TRANSACTION ..., SET CONSTRAINTS ....
func fastSet(s stmt) verdict {
	switch {
	case s.is(1, "local"):
		return primary("set-local")
	case s.is(1, "transaction"):
		return primary("set-transaction")
	case s.is(1, "constraints"):
		return primary("set-constraints")
	}
	v := primary("set")
	v.SessionState = true
	return v
}

// fastDiscard: DISCARD ALL | PLANS | SEQUENCES | TEMP | TEMPORARY.
func fastDiscard(s stmt) (verdict, bool) {
	if len(s.toks) != 2 {
		return verdict{}, false
	}
	v := primary("discard")
	switch {
	case s.is(1, "all"):
		v.Reason, v.ResetAll, v.SessionState, v.Unpin = "discard-all", true, true, discardAllPins
	case s.is(1, "temp"), s.is(1, "temporary"):
		v.Unpin = PinTempTable
	case s.is(1, "plans"), s.is(1, "sequences"):
	default:
		return verdict{}, false
	}
	return v, true
}

// fastCreate: any CREATE is DDL; CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP | TEMPORARY ... and
// anything created in (or over a relation in) pg_temp pins the session.
func fastCreate(s stmt) (verdict, bool) {
	if callsSpecial(s) {
		return verdict{}, false
	}
	v := primary("ddl")
	i := 1
	for s.is(i, "or") || s.is(i, "replace") || s.is(i, "global") || s.is(i, "local") {
		i++
	}
	temp := s.is(i, "temp") || s.is(i, "temporary")
	for j := range s.toks {
		if s.kind(j+1) == tkDot && isTempSchemaTok(s, j) {
			temp = true
		}
	}
	if temp {
		v.Reason, v.Pin = "temp-table", PinTempTable
	}
	return v, true
}

// isTempSchemaTok reports whether token j names the session's temporary schema (pg_temp or
// pg_temp_N).
func isTempSchemaTok(s stmt, j int) bool {
	name, ok := identName(s.src, s.toks[j])
	return ok && isTempSchema(name)
}

func isTempSchema(name string) bool {
	return name == "pg_temp" || strings.HasPrefix(name, "pg_temp_")
}
