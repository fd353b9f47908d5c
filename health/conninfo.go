package health

import (
	"fmt"
	"strings"
)

// ConninfoPair is one keyword = value of a libpq connection string.
type ConninfoPair struct{ Key, Value string }

// ParseConninfo splits a libpq keyword/value connection string: keyword = value pairs separated
// by white space; a value is either single-quoted, where \' and \\ are escapes, or a run of
// non-space characters, where a backslash escapes the next character. On an error it returns
// the pairs before the fault with it. Errors never quote values.
func ParseConninfo(s string) ([]ConninfoPair, error) {
	var pairs []ConninfoPair
	i := 0
	skipSpace := func() {
		for i < len(s) && isConninfoSpace(s[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(s) {
			return pairs, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isConninfoSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skipSpace()
		if key == "" || i == len(s) || s[i] != '=' {
			return pairs, fmt.Errorf("missing \"=\" after %q", key)
		}
		i++
		skipSpace()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					v.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if ch == '\'' {
					closed = true
					break
				}
				v.WriteByte(ch)
			}
			if !closed {
				return pairs, fmt.Errorf("unterminated quoted value of %q", key)
			}
		} else {
			for i < len(s) && !isConninfoSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		pairs = append(pairs, ConninfoPair{key, v.String()})
	}
}

func isConninfoSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// FormatConninfo writes pairs as keyword='value' with \ and ' escaped by a backslash.
func FormatConninfo(pairs []ConninfoPair) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.Key)
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p.Value))
		b.WriteByte('\'')
	}
	return b.String()
}
