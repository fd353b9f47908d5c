package router

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// The parser path: PostgreSQL's own grammar (pg_query_go, PostgreSQL 17) for what the fast path
// could not decide.

// maxParseDepth bounds the tree depth (see nestingEstimate) of texts handed to the parser:
// libpg_query builds and serialises the tree recursively on the C stack, and deep trees crash
// the process (measured with a 2 MiB stack: 5 000 levels of "IS NULL" or 2 700 nested
// sub-selects; with 8 MiB about four times that). The limit keeps 1 MiB stacks safe (tested).
// Deeper texts route to the primary.
const maxParseDepth = 500

// cursorOptHold is CURSOR_OPT_HOLD from parsenodes.h: DECLARE ... WITH HOLD.
const cursorOptHold = 0x0020

// parseStmt classifies one statement (as split by the lexer) with the parser.
func parseStmt(cat Catalog, s stmt) verdict {
	if nestingEstimate(s) > maxParseDepth {
		v := primary("too-complex")
		lexicalEffects(s, &v)
		return v
	}
	res, err := pg_query.Parse(s.sql())
	if err != nil || len(res.GetStmts()) == 0 {
		v := primary("parse-error")
		v.parseErr = true
		lexicalEffects(s, &v)
		return v
	}
	var a accum
	for _, raw := range res.GetStmts() {
		a.add(treeStmt(cat, raw.GetStmt()))
	}
	return a.result()
}

// treeStmt classifies one parsed statement.
func treeStmt(cat Catalog, node *pg_query.Node) verdict {
	switch n := node.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return readTree(cat, node)
	case *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt,
		*pg_query.Node_MergeStmt:
		return withEffects(primary("write"), scanTree(cat, node))
	case *pg_query.Node_ExplainStmt:
		return explainTree(cat, n.ExplainStmt)
	case *pg_query.Node_CopyStmt:
		return copyTree(cat, n.CopyStmt)
	case *pg_query.Node_TransactionStmt:
		return txTree(n.TransactionStmt)
	case *pg_query.Node_VariableSetStmt:
		return setTree(n.VariableSetStmt)
	case *pg_query.Node_VariableShowStmt:
		return replica("show")
	case *pg_query.Node_DiscardStmt:
		return discardTree(n.DiscardStmt)
	case *pg_query.Node_ListenStmt:
		v := primary("listen")
		v.Pin = PinListen
		return v
	case *pg_query.Node_UnlistenStmt:
		v := primary("unlisten")
		if n.UnlistenStmt.GetConditionname() == "" {
			v.Unpin = PinListen
		}
		return v
	case *pg_query.Node_NotifyStmt:
		return primary("notify")
	case *pg_query.Node_LoadStmt:
		v := primary("load")
		v.SessionState = true
		return v
	case *pg_query.Node_PrepareStmt:
		v := primary("prepare")
		v.Pin = PinPrepare
		return v
	case *pg_query.Node_ExecuteStmt:
		return withEffects(primary("execute"), scanTree(cat, node))
	case *pg_query.Node_DeallocateStmt:
		v := primary("deallocate")
		if n.DeallocateStmt.GetIsall() || n.DeallocateStmt.GetName() == "" {
			v.Unpin = PinPrepare
		}
		return v
	case *pg_query.Node_DeclareCursorStmt:
		return declareTree(cat, n.DeclareCursorStmt)
	case *pg_query.Node_ClosePortalStmt:
		v := primary("cursor")
		if n.ClosePortalStmt.GetPortalname() == "" {
			v.Unpin = PinHoldCursor
		}
		return v
	case *pg_query.Node_FetchStmt:
		return primary("cursor")
	case *pg_query.Node_CallStmt:
		return withEffects(primary("call"), scanTree(cat, node))
	case *pg_query.Node_DoStmt:
		return primary("do")
	case *pg_query.Node_LockStmt:
		return primary("lock")
	case *pg_query.Node_ConstraintsSetStmt:
		return primary("set-constraints")
	case *pg_query.Node_CreateTableAsStmt:
		f := scanTree(cat, node)
		v := primary("ddl")
		if !n.CreateTableAsStmt.GetInto().GetSkipData() {
			v = withEffects(v, f)
		}
		return tempDDL(v, f.temp)
	case *pg_query.Node_CreateStmt, *pg_query.Node_ViewStmt, *pg_query.Node_CreateSeqStmt,
		*pg_query.Node_CompositeTypeStmt:
		return tempDDL(primary("ddl"), scanTree(cat, node).temp)
	case *pg_query.Node_CreateFunctionStmt:
		return tempDDL(primary("ddl"), isTempName(n.CreateFunctionStmt.GetFuncname()))
	case *pg_query.Node_CreateEnumStmt:
		return tempDDL(primary("ddl"), isTempName(n.CreateEnumStmt.GetTypeName()))
	case *pg_query.Node_CreateRangeStmt:
		return tempDDL(primary("ddl"), isTempName(n.CreateRangeStmt.GetTypeName()))
	case *pg_query.Node_CreateDomainStmt:
		return tempDDL(primary("ddl"), isTempName(n.CreateDomainStmt.GetDomainname()))
	}
	return primary("ddl")
}

// readTree classifies a query that should only read: SELECT / VALUES / TABLE / WITH.
func readTree(cat Catalog, node *pg_query.Node) verdict {
	f := scanTree(cat, node)
	v := replica("select")
	switch {
	case f.into:
		v = primary("select-into")
		if f.intoTemp {
			v.Pin |= PinTempTable
		}
	case f.locking:
		v = primary("locking-clause")
	case f.modify:
		v = primary("data-modifying-cte")
	case f.hard != "":
		v = primary(f.hard)
	case f.soft != "":
		v = primary(f.soft)
		v.soft = true
	}
	return withEffects(v, f)
}

// explainTree: EXPLAIN without ANALYZE runs nothing (replica, except EXPLAIN EXECUTE, whose
// prepared statement lives on the pinned node); EXPLAIN ANALYZE routes as its statement.
func explainTree(cat Catalog, e *pg_query.ExplainStmt) verdict {
	analyze := false
	for _, o := range e.GetOptions() {
		if d := o.GetDefElem(); d != nil && d.GetDefname() == "analyze" {
			analyze = d.GetArg() == nil || defBool(d.GetArg(), true)
		}
	}
	if _, ok := e.GetQuery().GetNode().(*pg_query.Node_ExecuteStmt); ok {
		return primary("execute")
	}
	if !analyze {
		return replica("explain")
	}
	v := treeStmt(cat, e.GetQuery())
	if v.Route == Replica {
		v.Reason = "explain"
	}
	return v
}

// copyTree: COPY FROM STDIN is primary (CopyIn); COPY TO STDOUT routes as its query or table
// read (CopyOut); COPY to or from a server file or program is primary.
func copyTree(cat Catalog, c *pg_query.CopyStmt) verdict {
	file := c.GetFilename() != "" || c.GetIsProgram()
	if c.GetIsFrom() {
		if file {
			return primary("copy-file")
		}
		v := primary("copy-in")
		v.CopyIn = true
		return v
	}
	v := replica("copy-out")
	if c.GetQuery() != nil {
		if v = treeStmt(cat, c.GetQuery()); v.Route == Replica {
			v.Reason = "copy-out"
		}
	}
	if file {
		v.Route, v.Reason, v.soft = Primary, "copy-file", false
		return v
	}
	v.CopyOut = true
	return v
}

// declareTree: a cursor WITH HOLD outlives its transaction on its node (primary + pin); one
// without HOLD only exists inside a transaction, which the proxy keeps on one node anyway, so it
// routes as its query.
func declareTree(cat Catalog, d *pg_query.DeclareCursorStmt) verdict {
	v := treeStmt(cat, d.GetQuery())
	if d.GetOptions()&cursorOptHold != 0 {
		v.Route, v.Reason, v.soft = Primary, "hold-cursor", false
		v.Pin |= PinHoldCursor
	} else if v.Route == Replica {
		v.Reason = "declare"
	}
	return v
}

func txTree(t *pg_query.TransactionStmt) verdict {
	switch t.GetKind() {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		readOnly, serializable := false, false
		for _, o := range t.GetOptions() {
			d := o.GetDefElem()
			switch {
			case d == nil:
			case d.GetDefname() == "transaction_read_only":
				readOnly = d.GetArg() != nil && defBool(d.GetArg(), false)
			case d.GetDefname() == "transaction_isolation":
				serializable = strings.EqualFold(d.GetArg().GetAConst().GetSval().GetSval(), "serializable")
			}
		}
		return beginVerdict(readOnly, serializable)
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg_query.TransactionStmtKind_TRANS_STMT_RELEASE,
		pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return primary("savepoint")
	}
	v := primary("tx-end")
	v.Tx = TxEnd
	return v
}

func setTree(s *pg_query.VariableSetStmt) verdict {
	switch {
	case s.GetIsLocal():
		return primary("set-local")
	case s.GetKind() == pg_query.VariableSetKind_VAR_SET_MULTI && strings.HasPrefix(s.GetName(), "TRANSACTION"):
		return primary("set-transaction")
	}
	v := primary("set")
	v.SessionState = true
	switch s.GetKind() {
	case pg_query.VariableSetKind_VAR_RESET:
		v.Reason = "reset"
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		v.Reason, v.ResetAll = "reset-all", true
	}
	return v
}

func discardTree(d *pg_query.DiscardStmt) verdict {
	v := primary("discard")
	switch d.GetTarget() {
	case pg_query.DiscardMode_DISCARD_ALL:
		v.Reason, v.ResetAll, v.SessionState, v.Unpin = "discard-all", true, true, discardAllPins
	case pg_query.DiscardMode_DISCARD_TEMP:
		v.Unpin = PinTempTable
	}
	return v
}

// tempDDL marks a CREATE of a temporary object.
func tempDDL(v verdict, temp bool) verdict {
	if temp {
		v.Reason = "temp-table"
		v.Pin |= PinTempTable
	}
	return v
}

// isTempName reports whether a qualified name list starts with the temporary schema.
func isTempName(names []*pg_query.Node) bool {
	return len(names) > 1 && isTempSchema(names[0].GetString_().GetSval())
}

// defBool reads an option value the way PostgreSQL's defGetBoolean does; a value it cannot read
// gives dflt (the cautious answer for the caller).
func defBool(n *pg_query.Node, dflt bool) bool {
	switch {
	case n.GetInteger() != nil:
		return n.GetInteger().GetIval() != 0
	case n.GetBoolean() != nil:
		return n.GetBoolean().GetBoolval()
	case n.GetAConst() != nil:
		c := n.GetAConst()
		switch {
		case c.GetIval() != nil:
			return c.GetIval().GetIval() != 0
		case c.GetBoolval() != nil:
			return c.GetBoolval().GetBoolval()
		case c.GetSval() != nil:
			return strBool(c.GetSval().GetSval(), dflt)
		}
	case n.GetString_() != nil:
		return strBool(n.GetString_().GetSval(), dflt)
	}
	return dflt
}

func strBool(s string, dflt bool) bool {
	switch strings.ToLower(s) {
	case "false", "off", "no", "0", "f", "n":
		return false
	case "true", "on", "yes", "1", "t", "y":
		return true
	}
	return dflt
}
