package router

import (
	"fmt"
	"strings"
	"testing"
)

// pgCase is one table entry. Expected values come from PostgreSQL semantics; every field not
// written is expected to be zero (reason "" is not checked).
type pgCase struct {
	sql    string
	route  Route
	reason string
	x      ext
}

// ext holds the less common expectations.
type ext struct {
	tx      TxEffect
	sess    bool
	reset   bool
	pin     Pin
	unpin   Pin
	multi   bool
	hint    bool
	copyIn  bool
	copyOut bool
}

const (
	R = Replica
	P = Primary
)

// testCatalog is the catalog the table is written against.
func testCatalog() *PGCatalog {
	c := NewPGCatalog()
	c.Add("public", "my_writer", 'v')
	c.Add("public", "my_reader", 's')
	c.Add("public", "my_imm", 'i')
	c.Add("app", "audit", 'v')
	c.Add("app", "lookup", 's')
	c.Add("public", "overloaded", 's')
	c.Add("public", "overloaded", 'v')
	c.Add("public", "MixedCase", 's')
	c.Add("ext", "similarity", 'i')
	c.Add("pg_catalog", "pg_read_file", 'v')
	return c
}

// allCases gathers the tables of the pgcases_*_test.go files.
func allCases() []pgCase {
	var all []pgCase
	for _, t := range [][]pgCase{readCases, lockCases, explainCopyCases, writeDDLCases, txSessionCases,
		pinCases, multiHintCases, lexCases} {
		all = append(all, t...)
	}
	return all
}

func TestPGCaseTable(t *testing.T) {
	all := allCases()
	if len(all) < 300 {
		t.Fatalf("table has %d entries, want at least 300", len(all))
	}
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.sql] {
			t.Errorf("duplicate table entry %q", c.sql)
		}
		seen[c.sql] = true
	}
}

func TestPGClassify(t *testing.T) {
	full := NewPGClassifier(testCatalog(), 1000)
	parserOnly := NewPGClassifier(testCatalog(), 0)
	parserOnly.parserOnly = true
	for _, c := range allCases() {
		t.Run(caseName(c.sql), func(t *testing.T) {
			checkClass(t, "classify", c, full.Classify(c.sql))
			checkClass(t, "cached", c, full.Classify(c.sql))
			checkClass(t, "parser-only", c, parserOnly.Classify(c.sql))
		})
	}
}

// TestPGClassifyNilCatalog: without a catalog, builtin knowledge still routes common reads to
// replicas, and user functions are unknown.
func TestPGClassifyNilCatalog(t *testing.T) {
	cases := []pgCase{
		{"SELECT lower('A'), upper('b'), length('abc'), abs(-1), round(1.5)", R, "select", ext{}},
		{"SELECT now(), current_timestamp, date_trunc('day', now()), to_char(now(), 'YYYY')", R, "select", ext{}},
		{"SELECT pg_is_in_recovery(), inet_server_port(), current_setting('x'), version()", R, "select", ext{}},
		{"SELECT coalesce(a, 0), jsonb_build_object('a', 1), data->>'k' FROM t", R, "select", ext{}},
		{"SELECT count(*), string_agg(x, ','), array_agg(y) FROM t GROUP BY z", R, "select", ext{}},
		{"SELECT my_reader()", P, "unknown-function:my_reader", ext{}},
		{"SELECT public.my_imm(1)", P, "unknown-function:public.my_imm", ext{}},
		{"SELECT nextval('s')", P, "volatile-function:nextval", ext{}},
		{"SELECT pg_read_file('x')", P, "unknown-function:pg_read_file", ext{}},
		{"/* baton:replica */ SELECT my_reader()", R, "hint", ext{hint: true}},
	}
	full := NewPGClassifier(nil, 100)
	parserOnly := NewPGClassifier(nil, 0)
	parserOnly.parserOnly = true
	for _, c := range cases {
		t.Run(caseName(c.sql), func(t *testing.T) {
			checkClass(t, "classify", c, full.Classify(c.sql))
			checkClass(t, "parser-only", c, parserOnly.Classify(c.sql))
		})
	}
}

func checkClass(t *testing.T, path string, c pgCase, got Class) {
	t.Helper()
	want := Class{Route: c.route, Reason: got.Reason, Tx: c.x.tx, SessionState: c.x.sess, ResetAll: c.x.reset,
		Pin: c.x.pin, Unpin: c.x.unpin, Multi: c.x.multi, Hint: c.x.hint, CopyIn: c.x.copyIn, CopyOut: c.x.copyOut}
	if c.reason != "" {
		want.Reason = c.reason
	}
	if got != want {
		t.Errorf("%s: %q\n got  %s\n want %s", path, c.sql, fmtClass(got), fmtClass(want))
	}
}

func fmtClass(c Class) string {
	return fmt.Sprintf("%s reason=%q tx=%d sess=%v reset=%v pin=%#x unpin=%#x multi=%v hint=%v in=%v out=%v",
		c.Route, c.Reason, c.Tx, c.SessionState, c.ResetAll, c.Pin, c.Unpin, c.Multi, c.Hint, c.CopyIn, c.CopyOut)
}

func caseName(sql string) string {
	if len(sql) > 60 {
		sql = sql[:60]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == '/' {
			return '_'
		}
		return r
	}, sql)
}
