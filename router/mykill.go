package router

import (
	"strconv"
	"strings"
)

// Statements baton answers itself for MySQL / MariaDB sessions: KILL of a connection id and
// SELECT CONNECTION_ID() (baton hands out its own thread ids). Both recognise only the plain
// shapes, alone in the text (comments and a trailing semicolon allowed); anything else is
// classified as usual.

// mySingleStmt returns the tokens of a single-statement text, without a trailing semicolon; ok is
// false for several statements or a text the server would reject.
func mySingleStmt(sql string) (toks []myTok, ok bool) {
	toks = lexMy(sql, nil, myLexMode{})
	if n := len(toks); n > 0 && toks[n-1].kind == mkSemi {
		toks = toks[:n-1]
	}
	for _, t := range toks {
		if t.kind == mkSemi || t.kind == mkBad {
			return nil, false
		}
	}
	return toks, true
}

// MyKill recognises KILL [HARD | SOFT] [CONNECTION | QUERY] id. query reports KILL QUERY.
// KILL QUERY ID query_id, KILL USER name and ids given as expressions are not recognised.
func MyKill(sql string) (id uint64, query, ok bool) {
	toks, ok := mySingleStmt(sql)
	if !ok {
		return 0, false, false
	}
	word := func(i int, w string) bool {
		return i < len(toks) && toks[i].kind == mkWord && strings.EqualFold(sql[toks[i].pos:toks[i].end], w)
	}
	i := 0
	if !word(i, "kill") {
		return 0, false, false
	}
	i++
	if word(i, "hard") || word(i, "soft") {
		i++
	}
	switch {
	case word(i, "query"):
		query = true
		i++
	case word(i, "connection"):
		i++
	}
	if i != len(toks)-1 || toks[i].kind != mkNumber {
		return 0, false, false
	}
	id, err := strconv.ParseUint(sql[toks[i].pos:toks[i].end], 10, 64)
	if err != nil {
		return 0, false, false
	}
	return id, query, true
}

// MyConnectionIDQuery recognises SELECT CONNECTION_ID() [[AS] alias] and returns the name of
// the result column: the alias, or the expression as written (as the server names it).
func MyConnectionIDQuery(sql string) (column string, ok bool) {
	toks, ok := mySingleStmt(sql)
	if !ok || len(toks) < 4 {
		return "", false
	}
	w := func(i int) string { return sql[toks[i].pos:toks[i].end] }
	if toks[0].kind != mkWord || !strings.EqualFold(w(0), "select") || toks[1].kind != mkWord ||
		!strings.EqualFold(w(1), "connection_id") || toks[2].kind != mkLParen || toks[3].kind != mkRParen {
		return "", false
	}
	rest := toks[4:]
	if len(rest) > 0 && rest[0].kind == mkWord && strings.EqualFold(sql[rest[0].pos:rest[0].end], "as") {
		rest = rest[1:]
		if len(rest) == 0 {
			return "", false
		}
	}
	switch {
	case len(rest) == 0:
		return sql[toks[1].pos:toks[3].end], true
	case len(rest) > 1:
		return "", false
	case rest[0].kind == mkWord:
		if rest[0].kw != kwNone {
			return "", false // FROM, WHERE …: not an alias
		}
		return sql[rest[0].pos:rest[0].end], true
	case rest[0].kind == mkQIdent || rest[0].kind == mkString || rest[0].kind == mkDQ:
		a := sql[rest[0].pos:rest[0].end]
		q := a[:1]
		return strings.ReplaceAll(a[1:len(a)-1], q+q, q), true
	}
	return "", false
}
