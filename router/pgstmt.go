package router

// stmt is one statement of a lexed text: its tokens (no trailing ';') and the source they
// point into.
type stmt struct {
	src  string
	toks []token
	// innerSemi: a ';' inside parentheses or a BEGIN ATOMIC body; such a text is left to the
	// parser.
	innerSemi bool
}

// splitStmts calls fn for each non-empty statement of toks, in order, splitting at top-level
// ';' the way psql does (not inside parentheses, nor inside the BEGIN ATOMIC ... END body of
// CREATE FUNCTION / PROCEDURE). fn returns false to stop.
func splitStmts(src string, toks []token, fn func(s stmt) bool) {
	start, depth, atomic := 0, 0, 0
	routine := false // statement is CREATE [OR REPLACE] FUNCTION|PROCEDURE
	inner := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tkLParen:
			depth++
		case tkRParen:
			if depth > 0 {
				depth--
			}
		case tkIdent:
			if i == start+1 || i == start+3 {
				routine = routine || isRoutineHead(src, toks[start:i+1])
			}
			if routine && depth == 0 {
				switch {
				case isKw(src, t, "begin"):
					atomic++
				case isKw(src, t, "case") && atomic > 0:
					atomic++
				case isKw(src, t, "end") && atomic > 0:
					atomic--
				}
			}
		case tkSemi:
			if depth > 0 || atomic > 0 {
				inner = true
				continue
			}
			if i > start && !fn(stmt{src: src, toks: toks[start:i], innerSemi: inner}) {
				return
			}
			start, depth, atomic, routine, inner = i+1, 0, 0, false, false
		}
	}
	if len(toks) > start {
		fn(stmt{src: src, toks: toks[start:], innerSemi: inner})
	}
}

// isRoutineHead reports whether toks are CREATE FUNCTION|PROCEDURE or
// CREATE OR REPLACE FUNCTION|PROCEDURE.
func isRoutineHead(src string, toks []token) bool {
	if len(toks) < 2 || !isKw(src, toks[0], "create") {
		return false
	}
	last := toks[len(toks)-1]
	if !isKw(src, last, "function") && !isKw(src, last, "procedure") {
		return false
	}
	return len(toks) == 2 || len(toks) == 4 && isKw(src, toks[1], "or") && isKw(src, toks[2], "replace")
}

// kind is the kind of token i, or 0 when i is out of range.
func (s stmt) kind(i int) tokKind {
	if i < 0 || i >= len(s.toks) {
		return 0
	}
	return s.toks[i].kind
}

// is reports whether token i is the unquoted keyword kw (kw in lower case).
func (s stmt) is(i int, kw string) bool {
	return i >= 0 && i < len(s.toks) && isKw(s.src, s.toks[i], kw)
}

// text is the source text of token i ("" when out of range).
func (s stmt) text(i int) string {
	if i < 0 || i >= len(s.toks) {
		return ""
	}
	return s.src[s.toks[i].pos:s.toks[i].end]
}

// sql is the statement's source text from its first to its last token.
func (s stmt) sql() string {
	if len(s.toks) == 0 {
		return ""
	}
	return s.src[s.toks[0].pos:s.toks[len(s.toks)-1].end]
}

// has reports whether any token of s is one of the unquoted keywords kws.
func (s stmt) has(kws ...string) bool {
	for i := range s.toks {
		for _, kw := range kws {
			if s.is(i, kw) {
				return true
			}
		}
	}
	return false
}

// isKw reports whether t is an unquoted identifier equal to kw, ignoring ASCII case.
func isKw(src string, t token, kw string) bool {
	if t.kind != tkIdent || t.end-t.pos != len(kw) {
		return false
	}
	for j := 0; j < len(kw); j++ {
		c := src[t.pos+j]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != kw[j] {
			return false
		}
	}
	return true
}

// identName returns the name an identifier token denotes: unquoted identifiers fold to lower
// case (ASCII only, as PostgreSQL does for UTF-8), quoted ones lose their quotes and "" escapes.
// ok is false for tokens that are not identifiers or cannot be decoded (U&"...").
func identName(src string, t token) (name string, ok bool) {
	raw := src[t.pos:t.end]
	switch t.kind {
	case tkIdent:
		return asciiLower(raw), true
	case tkQIdent:
		if len(raw) < 2 || raw[len(raw)-1] != '"' {
			return "", false
		}
		body := raw[1 : len(raw)-1]
		if !containsByte(body, '"') {
			return body, true
		}
		b := make([]byte, 0, len(body))
		for j := 0; j < len(body); j++ {
			b = append(b, body[j])
			if body[j] == '"' {
				j++ // skip the second quote of ""
			}
		}
		return string(b), true
	}
	return "", false
}

// asciiLower lower-cases ASCII letters; it allocates only when s has an upper-case letter.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
