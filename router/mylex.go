package router

import "strings"

// The MySQL / MariaDB lexer. It follows the server's lexer where that matters for routing:
// '-- ' needs a blank after the dashes ("1--1" is arithmetic), '#' starts a line comment,
// block comments do not nest, '/*!' and '/*!NNNNN' comments hold SQL that the server runs,
// '/*M!' comments hold SQL that only MariaDB runs, strings take backslash escapes unless the
// session runs with NO_BACKSLASH_ESCAPES, and backquoted identifiers never do.

// myKind is the lexical class of a MySQL token.
type myKind uint8

const (
	mkWord    myKind = iota + 1 // unquoted identifier or keyword
	mkQIdent                    // `backquoted identifier`
	mkDQ                        // "double quoted": a string, or an identifier under ANSI_QUOTES
	mkString                    // 'single quoted' (any charset introducer is a separate word)
	mkNumber                    // 1, 1.5, .5e3, 0x1F, 0b101
	mkUserVar                   // @name, @'name', @"name", @`name`
	mkSysVar                    // @@name, @@session.name, @@global.name
	mkHost                      // the @host part of an account name: 'u'@'h', 'u'@localhost
	mkParam                     // ? placeholder
	mkAssign                    // :=
	mkOp                        // one operator character: = < > ! ~ ^ & | + - * / % :
	mkLParen                    // (
	mkRParen                    // )
	mkComma                     // ,
	mkSemi                      // ;
	mkDot                       // .
	mkBad                       // an unterminated string, identifier or comment: the server rejects the text
	mkOther                     // any other byte: \ { } [ ] $ NUL ...
)

// myTok is one lexeme: its class, what the word table says of a word, and its byte range.
type myTok struct {
	kind     myKind
	kw       myKw  // keyword code of a word
	fn       uint8 // word flags (mf...)
	pos, end int32
}

// myLexMode selects how ambiguous text is read. The zero value is the server default.
type myLexMode struct {
	noSQEscape bool // backslash is not an escape in '..' (NO_BACKSLASH_ESCAPES)
	noDQEscape bool // backslash is not an escape in ".." (NO_BACKSLASH_ESCAPES or ANSI_QUOTES)
	skipCond   bool // skip conditional comments (/*!NNNNN with NNNNN > myCondVersion, /*M!)
}

// myCondVersion: a versioned comment /*!NNNNN ... */ below this version runs on every server
// baton supports (MySQL 5.7+, MariaDB 10+). From it on, whether it runs depends on the server:
// MariaDB skips MySQL's 5.7+ versions (50700-99999), MySQL skips versions above its own.
const myCondVersion = 50700

// lexMy appends the tokens of src to toks and returns them. Comments and blanks are dropped;
// the content of executable comments is lexed as SQL. An unterminated string, identifier or
// comment ends the text with an mkBad token. It never panics, whatever the input; src must be
// shorter than 2 GiB.
func lexMy(src string, toks []myTok, mode myLexMode) []myTok {
	n := len(src)
	inExec := false // inside /*! ... */: a top-level "*/" ends it
	for i := 0; i < n; {
		c := src[i]
		start := i
		switch cc := charClass[c]; {
		case cc&ccSpace != 0:
			i++
			continue
		case cc&ccIdentStart != 0 || c == '$':
			i++
			for i < n && isIdentCont(src[i]) {
				i++
			}
			kw, fn := myLookup(src[start:i])
			toks = append(toks, myTok{kind: mkWord, kw: kw, fn: fn, pos: int32(start), end: int32(i)})
			continue
		case c == '#' || c == '-' && i+1 < n && src[i+1] == '-' && (i+2 == n || isDashBlank(src[i+2])):
			i = skipLineComment(src, i)
			continue
		case c == '/' && i+1 < n && src[i+1] == '*':
			next, exec, ok := myOpenComment(src, i, mode)
			if !ok {
				return append(toks, myTok{kind: mkBad, pos: int32(i), end: int32(n)})
			}
			i = next
			inExec = inExec || exec
			continue
		case c == '*' && inExec && i+1 < n && src[i+1] == '/':
			inExec = false
			i += 2
			continue
		case c == '\'' || c == '"' || c == '`':
			noEsc := c == '`' || c == '\'' && mode.noSQEscape || c == '"' && mode.noDQEscape
			end, ok := myQuoted(src, i+1, c, noEsc)
			if !ok {
				return append(toks, myTok{kind: mkBad, pos: int32(i), end: int32(n)})
			}
			kind := mkString
			if c == '"' {
				kind = mkDQ
			} else if c == '`' {
				kind = mkQIdent
			}
			i = end
			toks = append(toks, myTok{kind: kind, pos: int32(start), end: int32(i)})
			continue
		case c == '@':
			var kind myKind
			var ok bool
			kind, i, ok = myLexAt(src, i, toks, mode)
			if !ok {
				return append(toks, myTok{kind: mkBad, pos: int32(start), end: int32(n)})
			}
			toks = append(toks, myTok{kind: kind, pos: int32(start), end: int32(i)})
			continue
		case isDigit(c) || c == '.' && i+1 < n && isDigit(src[i+1]) && !prevIsName(toks, src, i):
			i = myNumber(src, i)
			toks = append(toks, myTok{kind: mkNumber, pos: int32(start), end: int32(i)})
			continue
		}
		kind := myPunct[c]
		if c == ':' && i+1 < n && src[i+1] == '=' {
			kind = mkAssign
			i++
		}
		i++
		toks = append(toks, myTok{kind: kind, pos: int32(start), end: int32(i)})
	}
	if inExec {
		toks = append(toks, myTok{kind: mkBad, pos: int32(n), end: int32(n)}) // no closing "*/"
	}
	return toks
}

// myOpenComment handles a comment starting at i ("/*"). For a plain comment it returns the
// index after it. For an executable comment whose content runs, it returns the index of the
// content and exec = true. ok is false for an unterminated comment.
func myOpenComment(src string, i int, mode myLexMode) (next int, exec, ok bool) {
	n := len(src)
	j := i + 2
	cond := false
	switch {
	case j < n && src[j] == '!':
		j++
		d := 0
		for j+d < n && d < 6 && isDigit(src[j+d]) {
			d++
		}
		if d >= 5 {
			if d == 5 && myVersionCond(src[j:j+5]) || d == 6 {
				cond = true
			}
			j += d
		}
	case j+1 < n && (src[j] == 'M' || src[j] == 'm') && src[j+1] == '!':
		j += 2
		for d := 0; j < n && d < 6 && isDigit(src[j]); d++ {
			j++
		}
		cond = true
	default:
		k := strings.Index(src[j:], "*/")
		if k < 0 {
			return n, false, false
		}
		return j + k + 2, false, true
	}
	if cond && mode.skipCond {
		k := strings.Index(src[j:], "*/")
		if k < 0 {
			return n, false, false
		}
		return j + k + 2, false, true
	}
	return j, true, true
}

// isDashBlank reports whether c after "--" makes a comment: a blank or a control character.
func isDashBlank(c byte) bool { return c <= ' ' || c == 0x7f }

// myPunct is the kind of a one-byte token.
var myPunct = func() (t [256]myKind) {
	for c := range t {
		t[c] = mkOther
	}
	for _, c := range []byte("=<>!~^&|+-*/%:") {
		t[c] = mkOp
	}
	t['('], t[')'], t[','], t[';'], t['.'], t['?'] = mkLParen, mkRParen, mkComma, mkSemi, mkDot, mkParam
	return t
}()

// myVersionCond reports whether the five-digit version v makes a comment conditional.
func myVersionCond(v string) bool {
	x := 0
	for i := 0; i < len(v); i++ {
		x = x*10 + int(v[i]-'0')
	}
	return x >= myCondVersion
}

// myQuoted scans a quoted body starting just after the opening quote q: a doubled quote is a
// quote, and so is \q unless noEsc. It returns the index after the closing quote.
func myQuoted(src string, i int, q byte, noEsc bool) (int, bool) {
	n := len(src)
	for i < n {
		switch src[i] {
		case '\\':
			if !noEsc {
				i += 2
				continue
			}
		case q:
			if i+1 < n && src[i+1] == q {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return n, false
}

// myLexAt lexes a token starting with '@' at i: a system variable, a user variable, or the
// host part of an account name when it directly follows a user name.
func myLexAt(src string, i int, toks []myTok, mode myLexMode) (myKind, int, bool) {
	n := len(src)
	if i+1 < n && src[i+1] == '@' {
		j := i + 2
		for j < n && (isIdentCont(src[j]) || src[j] == '.') {
			j++
		}
		return mkSysVar, j, true // a bare "@@" too: the grammar allows "@@ name"
	}
	kind := mkUserVar
	if isAccountEnd(toks, i) {
		kind = mkHost
	}
	j := i + 1
	if j < n && (src[j] == '\'' || src[j] == '"' || src[j] == '`') {
		noEsc := src[j] == '`' || src[j] == '\'' && mode.noSQEscape || src[j] == '"' && mode.noDQEscape
		end, ok := myQuoted(src, j+1, src[j], noEsc)
		return kind, end, ok
	}
	for j < n && (isIdentCont(src[j]) || src[j] == '.' || kind == mkHost && src[j] == '%') {
		j++
	}
	return kind, j, true // a bare "@" too: the grammar allows "@ name"
}

// isAccountEnd reports whether the token before the '@' at i ends exactly at i and is a quoted
// user name ('u'@'h', "u"@h, `u`@h). An unquoted word is not taken for one: "SELECT@a" reads
// a user variable, and u@h (in GRANT, CREATE USER, DEFINER = ...) lexes as a user variable in
// statements that go to the primary anyway.
func isAccountEnd(toks []myTok, at int) bool {
	if len(toks) == 0 {
		return false
	}
	t := toks[len(toks)-1]
	if int(t.end) != at {
		return false
	}
	switch t.kind {
	case mkString, mkDQ, mkQIdent:
		return true
	}
	return false
}

// prevIsName reports whether the '.' at i directly follows a name, as in t.5col or db.t.
func prevIsName(toks []myTok, src string, i int) bool {
	if len(toks) == 0 {
		return false
	}
	t := toks[len(toks)-1]
	return int(t.end) == i && (t.kind == mkWord || t.kind == mkQIdent)
}

// myNumber scans a numeric literal: digits with one fraction and an exponent, 0x / 0b
// literals. Trailing letters start a new token.
func myNumber(src string, i int) int {
	n := len(src)
	if src[i] == '0' && i+2 < n && (src[i+1] == 'x' || src[i+1] == 'b') && isHexDigit(src[i+2]) {
		i += 2
		for i < n && isHexDigit(src[i]) {
			i++
		}
		return i
	}
	for i < n && isDigit(src[i]) {
		i++
	}
	if i < n && src[i] == '.' {
		i++
		for i < n && isDigit(src[i]) {
			i++
		}
	}
	if i < n && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < n && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < n && isDigit(src[j]) {
			for i = j; i < n && isDigit(src[i]); i++ {
			}
		}
	}
	return i
}

// myHintOf looks for /* baton:primary */ or /* baton:replica */ among the comments before the
// first token of sql, with MySQL's comment rules. Executable comments are SQL: they end the
// search.
func myHintOf(sql string) hint {
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case isSpace(c):
			i++
		case c == '#' || c == '-' && i+2 < n && sql[i+1] == '-' && isDashBlank(sql[i+2]):
			i = skipLineComment(sql, i)
		case c == '/' && i+1 < n && sql[i+1] == '*':
			if i+2 < n && sql[i+2] == '!' || i+3 < n && sql[i+2]|0x20 == 'm' && sql[i+3] == '!' {
				return hintNone // executable comment: SQL, not a hint
			}
			k := strings.Index(sql[i+2:], "*/")
			if k < 0 {
				return hintNone
			}
			switch body := strings.TrimSpace(sql[i+2 : i+2+k]); {
			case strings.EqualFold(body, "baton:primary"):
				return hintPrimary
			case strings.EqualFold(body, "baton:replica"):
				return hintReplica
			}
			i += k + 4
		default:
			return hintNone
		}
	}
	return hintNone
}
