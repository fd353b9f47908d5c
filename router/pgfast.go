package router

// The fast path: decide a statement from its tokens alone, or give up (ok == false) and let the
// parser decide. It must never say more than the parser would: when in doubt, give up.

// fastStmt classifies one statement from its tokens. ok is false when it cannot decide.
func fastStmt(cat Catalog, s stmt) (v verdict, ok bool) {
	if s.innerSemi || len(s.toks) == 0 {
		return v, false
	}
	if s.kind(0) == tkLParen {
		return fastRead(cat, s)
	}
	var buf [12]byte
	w := buf[:0]
	if first := s.text(0); s.kind(0) == tkIdent && len(first) <= len(buf) {
		w = append(w, first...)
		for j, c := range w {
			if c >= 'A' && c <= 'Z' {
				w[j] = c + 'a' - 'A'
			}
		}
	}
	switch string(w) {
	case "select", "values", "table", "with":
		return fastRead(cat, s)
	case "show":
		return replica("show"), true
	case "explain":
		if s.kind(1) == tkLParen || s.has("analyze", "analyse", "execute") {
			return v, false
		}
		return replica("explain"), true
	case "begin", "start":
		return fastBegin(s)
	case "commit", "end", "abort", "rollback", "savepoint", "release", "prepare":
		return fastTxEnd(s)
	case "set":
		return fastSet(s), true
	case "reset":
		v = primary("reset")
		v.SessionState = true
		if len(s.toks) == 2 && s.is(1, "all") {
			v.Reason, v.ResetAll = "reset-all", true
		}
		return v, true
	case "discard":
		return fastDiscard(s)
	case "listen":
		v = primary("listen")
		v.Pin = PinListen
		return v, true
	case "unlisten":
		v = primary("unlisten")
		if len(s.toks) == 2 && s.kind(1) == tkOp && s.text(1) == "*" {
			v.Unpin = PinListen
		}
		return v, true
	case "notify":
		return primary("notify"), true
	case "load":
		v = primary("load")
		v.SessionState = true
		return v, true
	case "deallocate":
		v = primary("deallocate")
		if s.is(len(s.toks)-1, "all") && (len(s.toks) == 2 || len(s.toks) == 3 && s.is(1, "prepare")) {
			v.Unpin = PinPrepare
		}
		return v, true
	case "close":
		v = primary("cursor")
		if len(s.toks) == 2 && s.is(1, "all") {
			v.Unpin = PinHoldCursor
		}
		return v, true
	case "fetch", "move":
		return primary("cursor"), true
	case "execute":
		return primary("execute"), !callsSpecial(s)
	case "do":
		return primary("do"), true
	case "lock":
		return primary("lock"), true
	case "insert", "update", "delete", "merge":
		return primary("write"), !callsSpecial(s)
	case "call":
		return primary("call"), !callsSpecial(s)
	case "create":
		return fastCreate(s)
	case "alter", "drop", "truncate", "vacuum", "analyze", "analyse", "reindex", "cluster",
		"grant", "revoke", "comment", "refresh", "security", "checkpoint", "import", "reassign":
		return primary("ddl"), !callsSpecial(s)
	}
	return v, false // COPY, DECLARE, unknown words: the parser decides
}

// fastRead decides SELECT / VALUES / TABLE / WITH ... SELECT texts: replica when no token can
// make the statement write, lock or call an unsafe function; otherwise the parser decides.
func fastRead(cat Catalog, s stmt) (verdict, bool) {
	cteHead := s.is(0, "with") // in "WITH name [(cols)] AS (...), ..." before the main query
	depth := 0
	for i, t := range s.toks {
		switch t.kind {
		case tkLParen:
			if cteHead && depth == 0 {
				prev := s.kind(i - 1)
				if prev == tkIdent || prev == tkQIdent {
					depth++ // "AS (" / "MATERIALIZED (" body, or a CTE's column list
					continue
				}
				cteHead = false
			}
			if i > 0 && !parenIsSafe(cat, s, i) {
				return verdict{}, false
			}
			depth++
		case tkRParen:
			if depth == 0 {
				return verdict{}, false // unbalanced: PostgreSQL rejects it; the parser says so
			}
			depth--
		case tkIdent:
			if isRiskyReadWord(s.src, t) {
				return verdict{}, false
			}
			if cteHead && depth == 0 && (s.is(i, "select") || s.is(i, "values") || s.is(i, "table")) {
				cteHead = false
			}
		case tkUIdent, tkOther, tkSemi:
			return verdict{}, false
		}
	}
	if depth != 0 {
		return verdict{}, false
	}
	return replica("select"), true
}

// isRiskyReadWord: words that may turn a read into a write or a lock (FOR UPDATE, SELECT INTO,
// data-modifying CTEs). They can also be plain column names; the parser tells.
func isRiskyReadWord(src string, t token) bool {
	switch t.end - t.pos {
	case 3:
		return isKw(src, t, "for")
	case 4:
		return isKw(src, t, "into")
	case 5:
		return isKw(src, t, "merge")
	case 6:
		return isKw(src, t, "insert") || isKw(src, t, "update") || isKw(src, t, "delete")
	}
	return false
}

// parenIsSafe reports whether the '(' at i is syntax or a call of a function known to be safe
// on a replica.
func parenIsSafe(cat Catalog, s stmt, i int) bool {
	prev := s.toks[i-1]
	if prev.kind != tkIdent && prev.kind != tkQIdent {
		return prev.kind != tkUIdent
	}
	name, ok := identName(s.src, prev)
	if !ok {
		return false
	}
	schema := ""
	if s.kind(i-2) == tkDot {
		if s.kind(i-3) != tkIdent && s.kind(i-3) != tkQIdent || s.kind(i-4) == tkDot {
			return false
		}
		if schema, ok = identName(s.src, s.toks[i-3]); !ok {
			return false
		}
	} else if prev.kind == tkIdent && isSyntaxParen(s, i-1, name) {
		return true
	}
	return lookupFunc(cat, schema, name) == fnSafe
}

// isSyntaxParen reports whether the unquoted word at j (folded to name), followed by '(', is
// SQL syntax rather than a function call.
func isSyntaxParen(s stmt, j int, name string) bool {
	if _, ok := syntaxParen[name]; ok {
		return true
	}
	if s.is(j-1, "as") || s.is(j-1, "tablesample") || s.kind(j-1) == tkCast {
		return true // alias column list, type modifier, sampling method
	}
	switch name {
	case "over", "filter", "repeatable":
		return s.kind(j-1) == tkRParen
	case "by":
		return s.is(j-1, "order") || s.is(j-1, "group") || s.is(j-1, "partition")
	case "materialized":
		return s.is(j-1, "not")
	case "varying":
		return s.is(j-1, "character") || s.is(j-1, "char") || s.is(j-1, "bit")
	case "sets":
		return s.is(j-1, "grouping")
	case "rollup", "cube":
		return s.is(j-1, "by")
	case "join", "like", "ilike", "overlaps", "escape":
		switch s.kind(j - 1) {
		case tkIdent, tkQIdent, tkNumber, tkString, tkParam, tkRParen, tkRBracket:
			return true
		}
	}
	return false
}

// callsSpecial reports whether s may call a function whose effects (pins, session state) only
// the parser can pin down: advisory locks and set_config.
func callsSpecial(s stmt) bool {
	for i := 1; i < len(s.toks); i++ {
		if s.toks[i].kind != tkLParen {
			continue
		}
		if t := s.toks[i-1]; t.end-t.pos >= len("set_config") && (t.kind == tkIdent || t.kind == tkQIdent) {
			if name, ok := identName(s.src, t); ok && specialFuncs[name] >= fnAdvLock {
				return true
			}
		}
	}
	return false
}

// fastBegin: BEGIN [WORK | TRANSACTION] [modes], START TRANSACTION [modes].
func fastBegin(s stmt) (verdict, bool) {
	i := 1
	if s.is(0, "start") {
		if !s.is(1, "transaction") {
			return verdict{}, false
		}
		i = 2
	} else if s.is(1, "work") || s.is(1, "transaction") {
		i = 2
	}
	readOnly, serializable := false, false
	for ; i < len(s.toks); i++ {
		switch {
		case s.kind(i) == tkComma:
		case s.is(i, "serializable"):
			serializable = true
		case s.is(i, "read") && s.is(i+1, "only"):
			readOnly = true
			i++
		case s.is(i, "read") && s.is(i+1, "write"):
			readOnly = false
			i++
		case s.is(i, "isolation"), s.is(i, "level"), s.is(i, "serializable"), s.is(i, "repeatable"),
			s.is(i, "read"), s.is(i, "committed"), s.is(i, "uncommitted"), s.is(i, "not"),
			s.is(i, "deferrable"):
		default:
			return verdict{}, false
		}
	}
	return beginVerdict(readOnly, serializable), true
}

// beginVerdict: a read-only transaction may run on a replica, except a serializable one (a hot
// standby refuses serializable transactions, DEFERRABLE or not).
func beginVerdict(readOnly, serializable bool) verdict {
	if readOnly && !serializable {
		v := replica("begin-read-only")
		v.Tx = TxBeginReadOnly
		return v
	}
	v := primary("begin")
	if serializable {
		v.Reason = "begin-serializable"
	}
	v.Tx = TxBegin
	return v
}
