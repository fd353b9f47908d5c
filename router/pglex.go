package router

import "strings"

// tokKind is the lexical class of a PostgreSQL token.
type tokKind uint8

const (
	tkIdent    tokKind = iota + 1 // unquoted identifier or keyword
	tkQIdent                      // "quoted identifier"
	tkUIdent                      // U&"unicode identifier" (not decoded)
	tkString                      // '..', E'..', U&'..', B'..', X'..', N'..', $tag$..$tag$
	tkNumber                      // 1, 1.5, .5e3, 0x1F, 1_000
	tkParam                       // $1
	tkOp                          // operator: + - * / < > = ~ ! @ # % ^ & | ` ? and runs of them
	tkCast                        // ::
	tkLParen                      // (
	tkRParen                      // )
	tkLBracket                    // [
	tkRBracket                    // ]
	tkComma                       // ,
	tkSemi                        // ;
	tkDot                         // .
	tkColon                       // : (array slices, :=)
	tkOther                       // any other byte: \, a lone $, NUL ...
)

// token is one lexeme: its class and its byte range in the source text.
type token struct {
	kind     tokKind
	pos, end int
}

// lexInfo summarises facts about a lexed text that the classifier needs.
type lexInfo struct {
	// unterminated: a string, quoted identifier, dollar quote or block comment runs to the end
	// of the input; PostgreSQL rejects such a text.
	unterminated bool
	// stdBackslash: a standard ('...') string contains a backslash, so its extent would differ
	// if the session ran with standard_conforming_strings = off.
	stdBackslash bool
}

// lexPG appends the tokens of src to toks and returns them. Comments and whitespace are
// dropped. With scsOff, standard strings treat backslash as an escape (as PostgreSQL does with
// standard_conforming_strings = off). It never panics, whatever the input.
func lexPG(src string, toks []token, scsOff bool) ([]token, lexInfo) {
	var info lexInfo
	n := len(src)
	i := 0
	for i < n {
		c := src[i]
		start := i
		switch {
		case isSpace(c):
			i++
			continue
		case c == '-' && i+1 < n && src[i+1] == '-':
			i = skipLineComment(src, i)
			continue
		case c == '/' && i+1 < n && src[i+1] == '*':
			var ok bool
			if i, ok = skipBlockComment(src, i); !ok {
				info.unterminated = true
			}
			continue
		case c == '\'':
			i = lexQuoted(src, i+1, '\'', scsOff, &info)
			toks = append(toks, token{tkString, start, i})
			continue
		case c == '"':
			i = lexQuoted(src, i+1, '"', false, &info)
			toks = append(toks, token{tkQIdent, start, i})
			continue
		case c == '$':
			kind, end, ok := lexDollar(src, i)
			if !ok {
				info.unterminated = true
			}
			toks = append(toks, token{kind, start, end})
			i = end
			continue
		case isDigit(c) || (c == '.' && i+1 < n && isDigit(src[i+1])):
			i = lexNumber(src, i)
			toks = append(toks, token{tkNumber, start, i})
			continue
		case isIdentStart(c):
			i = lexWordOrPrefixed(src, i, scsOff, &info, &toks)
			continue
		case isOpChar(c):
			i = lexOperator(src, i)
			toks = append(toks, token{tkOp, start, i})
			continue
		}
		kind := tkOther
		switch c {
		case '(':
			kind = tkLParen
		case ')':
			kind = tkRParen
		case '[':
			kind = tkLBracket
		case ']':
			kind = tkRBracket
		case ',':
			kind = tkComma
		case ';':
			kind = tkSemi
		case '.':
			kind = tkDot
		case ':':
			kind = tkColon
			if i+1 < n && src[i+1] == ':' {
				kind = tkCast
				i++
			}
		}
		i++
		toks = append(toks, token{kind, start, i})
	}
	return toks, info
}

// lexWordOrPrefixed lexes an identifier, or a string / identifier with a one-letter prefix
// (E'..', B'..', X'..', N'..', U&'..', U&"..").
func lexWordOrPrefixed(src string, i int, scsOff bool, info *lexInfo, toks *[]token) int {
	n, start := len(src), i
	c := src[i] | 0x20
	if i+1 < n && src[i+1] == '\'' {
		switch c {
		case 'e':
			i = lexQuoted(src, i+2, '\'', true, info)
			*toks = append(*toks, token{tkString, start, i})
			return i
		case 'b', 'x', 'n':
			i = lexQuoted(src, i+2, '\'', scsOff && c == 'n', info)
			*toks = append(*toks, token{tkString, start, i})
			return i
		}
	}
	if c == 'u' && i+2 < n && src[i+1] == '&' && (src[i+2] == '\'' || src[i+2] == '"') {
		kind := tkString
		if src[i+2] == '"' {
			kind = tkUIdent
		}
		i = lexQuoted(src, i+3, src[i+2], false, info)
		*toks = append(*toks, token{kind, start, i})
		return i
	}
	i++
	for i < n && isIdentCont(src[i]) {
		i++
	}
	*toks = append(*toks, token{tkIdent, start, i})
	return i
}

// lexQuoted scans a quoted body starting just after the opening quote q; a doubled quote is an
// escaped quote and, with backslash, so is \q. It returns the index after the closing quote.
func lexQuoted(src string, i int, q byte, backslash bool, info *lexInfo) int {
	n := len(src)
	for i < n {
		switch src[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
			if q == '\'' {
				info.stdBackslash = true
			}
		case q:
			if i+1 < n && src[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	info.unterminated = true
	return n
}

// lexDollar lexes a token starting with '$': a parameter ($1), a dollar-quoted string
// ($$..$$, $tag$..$tag$) or a stray '$'. ok is false for an unterminated dollar quote.
func lexDollar(src string, i int) (kind tokKind, end int, ok bool) {
	n := len(src)
	j := i + 1
	if j < n && isDigit(src[j]) {
		for j < n && isDigit(src[j]) {
			j++
		}
		return tkParam, j, true
	}
	if j < n && isIdentStart(src[j]) {
		for j < n && (isIdentStart(src[j]) || isDigit(src[j])) {
			j++
		}
	}
	if j >= n || src[j] != '$' {
		return tkOther, i + 1, true // PostgreSQL rejects a stray '$'
	}
	tag := src[i : j+1]
	k := strings.Index(src[j+1:], tag)
	if k < 0 {
		return tkString, n, false
	}
	return tkString, j + 1 + k + len(tag), true
}

// lexNumber scans a numeric literal loosely: digits, underscores, one fraction, an exponent,
// and radix prefixes. Trailing letters start a new token, as in PostgreSQL before 15.
func lexNumber(src string, i int) int {
	n := len(src)
	if src[i] == '0' && i+2 < n && isRadix(src[i+1]) && isHexDigit(src[i+2]) {
		i += 2
		for i < n && (isHexDigit(src[i]) || src[i] == '_') {
			i++
		}
		return i
	}
	for i < n && (isDigit(src[i]) || src[i] == '_') {
		i++
	}
	if i < n && src[i] == '.' && !(i+1 < n && src[i+1] == '.') {
		i++
		for i < n && (isDigit(src[i]) || src[i] == '_') {
			i++
		}
	}
	if i < n && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < n && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < n && isDigit(src[j]) {
			i = j
			for i < n && isDigit(src[i]) {
				i++
			}
		}
	}
	return i
}

func isRadix(c byte) bool {
	c |= 0x20
	return c == 'x' || c == 'o' || c == 'b'
}

// lexOperator scans a run of operator characters, stopping before a comment start.
func lexOperator(src string, i int) int {
	n, start := len(src), i
	for i < n && isOpChar(src[i]) {
		if i > start && i+1 < n && (src[i] == '-' && src[i+1] == '-' || src[i] == '/' && src[i+1] == '*') {
			return i
		}
		i++
	}
	return i
}

// skipLineComment skips a -- comment and returns the index of the line end (or len(src)).
func skipLineComment(src string, i int) int {
	for i < len(src) && src[i] != '\n' && src[i] != '\r' {
		i++
	}
	return i
}

// skipBlockComment skips a nested /* */ comment starting at i. ok is false if unterminated.
func skipBlockComment(src string, i int) (end int, ok bool) {
	n, depth := len(src), 0
	for i < n {
		switch {
		case src[i] == '/' && i+1 < n && src[i+1] == '*':
			depth++
			i += 2
		case src[i] == '*' && i+1 < n && src[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return n, false
}

// Character classes, one table lookup per byte.
const (
	ccSpace uint8 = 1 << iota
	ccDigit
	ccIdentStart // A-Z a-z _ and every byte >= 0x80 (PostgreSQL treats them as letters)
	ccOp         // + - * / < > = ~ ! @ # % ^ & | ` ?
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			t[c] = ccSpace
		case c >= '0' && c <= '9':
			t[c] = ccDigit
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80:
			t[c] = ccIdentStart
		case strings.IndexByte("+-*/<>=~!@#%^&|`?", byte(c)) >= 0:
			t[c] = ccOp
		}
	}
	return t
}()

func isSpace(c byte) bool      { return charClass[c]&ccSpace != 0 }
func isDigit(c byte) bool      { return charClass[c]&ccDigit != 0 }
func isHexDigit(c byte) bool   { return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f' }
func isIdentStart(c byte) bool { return charClass[c]&ccIdentStart != 0 }
func isIdentCont(c byte) bool  { return charClass[c]&(ccIdentStart|ccDigit) != 0 || c == '$' }
func isOpChar(c byte) bool     { return charClass[c]&ccOp != 0 }
