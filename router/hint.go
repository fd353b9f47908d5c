package router

import "strings"

// hint is a routing hint found in the leading comments of a text.
type hint uint8

const (
	hintNone    hint = iota
	hintPrimary      // /* baton:primary */
	hintReplica      // /* baton:replica */
)

// hintOf looks for /* baton:primary */ or /* baton:replica */ among the comments before the
// first token of sql (case and surrounding blanks inside the comment do not matter). Comments
// anywhere else are ignored.
func hintOf(sql string) hint {
	for i := 0; i < len(sql); {
		switch c := sql[i]; {
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			i = skipLineComment(sql, i)
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end, ok := skipBlockComment(sql, i)
			if !ok {
				return hintNone
			}
			switch body := strings.TrimSpace(sql[i+2 : end-2]); {
			case strings.EqualFold(body, "baton:primary"):
				return hintPrimary
			case strings.EqualFold(body, "baton:replica"):
				return hintReplica
			}
			i = end
		default:
			return hintNone
		}
	}
	return hintNone
}

// applyHint lets a hint decide the route: a primary hint always wins; a replica hint wins only
// over a soft primary verdict (unknown or volatile functions), never over a write, a lock,
// transaction control, session state or a text PostgreSQL rejects.
func applyHint(cl Class, soft bool, h hint) Class {
	switch {
	case h == hintPrimary:
		cl.Route, cl.Reason, cl.Hint = Primary, "hint", true
	case h == hintReplica && (cl.Route == Replica || soft):
		cl.Route, cl.Reason, cl.Hint = Replica, "hint", true
	}
	return cl
}
