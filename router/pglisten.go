package router

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// ListenTarget is what one LISTEN or UNLISTEN statement subscribes to or drops.
type ListenTarget struct {
	// Unlisten: UNLISTEN (else LISTEN).
	Unlisten bool
	// All: UNLISTEN * (Channel is empty).
	All bool
	// Channel is the channel name as the server knows it: an unquoted identifier folded to
	// lower case, a quoted one as written (doubled quotes undone).
	Channel string
}

// maxListenText bounds the texts PGListenTarget hands to the parser.
const maxListenText = 4096

// PGListenTarget reports the target of sql when sql is exactly one LISTEN or UNLISTEN statement
// that PostgreSQL accepts; ok is false for anything else (several statements, a syntax error, a
// channel name the server would truncate with a NOTICE). It runs PostgreSQL's own grammar, so
// case folding and quoted identifiers are exactly the server's. Call it only for texts the
// classifier called "listen" or "unlisten": it parses on every call. Safe for concurrent use.
func PGListenTarget(sql string) (t ListenTarget, ok bool) {
	if len(sql) > maxListenText {
		return t, false
	}
	res, err := pg_query.Parse(sql)
	if err != nil || len(res.GetStmts()) != 1 {
		return t, false
	}
	switch n := res.GetStmts()[0].GetStmt().GetNode().(type) {
	case *pg_query.Node_ListenStmt:
		t.Channel = n.ListenStmt.GetConditionname()
	case *pg_query.Node_UnlistenStmt:
		t.Unlisten = true
		t.Channel = n.UnlistenStmt.GetConditionname()
		t.All = t.Channel == ""
	default:
		return t, false
	}
	// NAMEDATALEN - 1: a longer identifier was truncated by the scanner, which the server
	// reports with a NOTICE; leave such statements to the server.
	if !t.All && (t.Channel == "" || len(t.Channel) >= 63) {
		return t, false
	}
	return t, true
}
