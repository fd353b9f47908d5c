package router

import (
	"strings"
	"testing"
)

func TestLexPG(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []tokKind
	}{
		{"idents and ops", "SELECT a+b FROM t", []tokKind{tkIdent, tkIdent, tkOp, tkIdent, tkIdent, tkIdent}},
		{"line comment", "a -- x ; y\nb", []tokKind{tkIdent, tkIdent}},
		{"nested comment", "a /* x /* y */ ; */ b", []tokKind{tkIdent, tkIdent}},
		{"op before comment", "1 +-- c\n2", []tokKind{tkNumber, tkOp, tkNumber}},
		{"op before block", "1 */* c */2", []tokKind{tkNumber, tkOp, tkNumber}},
		{"string doubled quote", "'it''s;'", []tokKind{tkString}},
		{"std string backslash", `'a\' ;`, []tokKind{tkString, tkSemi}},
		{"E string", `E'a\';' ;`, []tokKind{tkString, tkSemi}},
		{"e string lower", `e'\\' x`, []tokKind{tkString, tkIdent}},
		{"U& string", `U&'\0041' UESCAPE '!'`, []tokKind{tkString, tkIdent, tkString}},
		{"U& ident", `U&"a" x`, []tokKind{tkUIdent, tkIdent}},
		{"bit strings", `B'01' X'ff' N'n'`, []tokKind{tkString, tkString, tkString}},
		{"prefix inside ident", `xe'a'`, []tokKind{tkIdent, tkString}},
		{"dollar empty tag", "$$a;b$$ c", []tokKind{tkString, tkIdent}},
		{"dollar tag", "$x$ $$ ; $x$;", []tokKind{tkString, tkSemi}},
		{"dollar in ident", "a$b$ c", []tokKind{tkIdent, tkIdent}},
		{"param", "$1 $23", []tokKind{tkParam, tkParam}},
		{"quoted ident", `"a""b;" c`, []tokKind{tkQIdent, tkIdent}},
		{"numbers", "1 1.5 .5 1e10 1.5E-3 0x1F 1_000", []tokKind{tkNumber, tkNumber, tkNumber, tkNumber, tkNumber, tkNumber, tkNumber}},
		{"cast and brackets", "a::int[]", []tokKind{tkIdent, tkCast, tkIdent, tkLBracket, tkRBracket}},
		{"punctuation", "(a.b, c:d);", []tokKind{tkLParen, tkIdent, tkDot, tkIdent, tkComma, tkIdent, tkColon, tkIdent, tkRParen, tkSemi}},
		{"other bytes", "\\ \x00", []tokKind{tkOther, tkOther}},
		{"stray dollar", "$ a", []tokKind{tkOther, tkIdent}},
		{"high bytes are identifier characters", "caf\xc3\xa9 x", []tokKind{tkIdent, tkIdent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, info := lexPG(tt.src, nil, false)
			if info.unterminated {
				t.Errorf("unterminated reported for %q", tt.src)
			}
			var got []tokKind
			for _, tk := range toks {
				got = append(got, tk.kind)
			}
			if !equalKinds(got, tt.want) {
				t.Errorf("lexPG(%q) = %v, want %v", tt.src, got, tt.want)
			}
		})
	}
}

func TestLexPGUnterminated(t *testing.T) {
	for _, src := range []string{"'abc", `"abc`, "$$abc", "$t$abc$$", "/* abc", "/* /* */", `E'\'`, `U&'abc`} {
		if _, info := lexPG(src, nil, false); !info.unterminated {
			t.Errorf("lexPG(%q): unterminated not reported", src)
		}
	}
}

func TestLexPGStandardConformingOff(t *testing.T) {
	src := `SELECT 'a\' ; DELETE FROM t; --'`
	on, infoOn := lexPG(src, nil, false)
	off, _ := lexPG(src, nil, true)
	if !infoOn.stdBackslash {
		t.Fatal("stdBackslash not reported")
	}
	if len(on) == len(off) {
		t.Fatalf("same token count with and without standard_conforming_strings: %d", len(on))
	}
}

// TestLexPGPrefixes: every prefix of a tricky text lexes without panic, and tokens stay in
// bounds and in order.
func TestLexPGPrefixes(t *testing.T) {
	src := `SELECT E'a\'b', U&"x" , $q$ ; $q$, "q""d", 0x1F /* /* */ */ -- c` + "\n" + `1.5e+3 ::int $1 $`
	for i := 0; i <= len(src); i++ {
		for _, off := range []bool{false, true} {
			toks, _ := lexPG(src[:i], nil, off)
			last := 0
			for _, tk := range toks {
				if tk.pos < last || tk.end <= tk.pos || tk.end > i {
					t.Fatalf("prefix %d: bad token %+v", i, tk)
				}
				last = tk.end
			}
		}
	}
}

func TestSplitStmts(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{";; SELECT 1 ;;", []string{"SELECT 1"}},
		{"SELECT (1; 2); SELECT 3", []string{"SELECT (1; 2)", "SELECT 3"}},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; END",
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END", "END"}},
		{"create or replace procedure p() begin atomic select 1; end; begin", []string{"create or replace procedure p() begin atomic select 1; end", "begin"}},
		{"BEGIN; END; SELECT 1", []string{"BEGIN", "END", "SELECT 1"}},
	}
	for _, tt := range tests {
		toks, _ := lexPG(tt.src, nil, false)
		var got []string
		splitStmts(tt.src, toks, func(s stmt) bool {
			got = append(got, s.sql())
			return true
		})
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("split %q = %q, want %q", tt.src, got, tt.want)
		}
	}
}

func equalKinds(a, b []tokKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
