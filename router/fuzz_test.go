package router

import (
	"strings"
	"testing"
)

// FuzzClassifyPG: no input may panic or crash the parser, answers are stable, a replica
// verdict carries no primary-only effect, and the fast path never sends to a replica what the
// parser would keep on the primary.
func FuzzClassifyPG(f *testing.F) {
	for _, c := range allCases() {
		f.Add(c.sql)
	}
	cl := NewPGClassifier(testCatalog(), 256)
	parserOnly := NewPGClassifier(testCatalog(), 0)
	parserOnly.parserOnly = true
	f.Fuzz(func(t *testing.T, sql string) {
		got := cl.Classify(sql)
		if again := cl.Classify(sql); again != got {
			t.Fatalf("unstable: %s then %s", fmtClass(got), fmtClass(again))
		}
		if got.Route == Replica {
			if got.CopyIn || got.Pin != 0 || got.Unpin != 0 || got.SessionState || got.ResetAll ||
				(got.Tx != TxNone && got.Tx != TxBeginReadOnly) {
				t.Fatalf("replica verdict with primary-only effects: %s", fmtClass(got))
			}
			p := parserOnly.Classify(sql)
			if p.Route == Primary && !got.Hint && p.Reason != "parse-error" && p.Reason != "too-complex" {
				t.Fatalf("fast path says replica, parser says %s", fmtClass(p))
			}
		}
		if got.Reason == "" {
			t.Fatal("empty reason")
		}
	})
}

// TestTooComplex: operator chains long enough to overflow libpg_query's C stack never reach
// the parser; effects are guessed from tokens instead.
func TestTooComplex(t *testing.T) {
	cl := NewPGClassifier(nil, 10)
	deep := "SELECT pg_advisory_lock(1), f_unknown(1" + strings.Repeat("+1", 60000) + ")"
	got := cl.Classify(deep)
	if got.Route != Primary || got.Reason != "too-complex" || got.Pin != PinAdvisoryLock {
		t.Fatalf("got %s", fmtClass(got))
	}
	// The fast path still decides long plain reads without the parser.
	long := "SELECT 1" + strings.Repeat("+1", 60000)
	if got := cl.Classify(long); got.Route != Replica {
		t.Fatalf("long plain read: %s", fmtClass(got))
	}
	// Deep nesting is rejected by the parser itself (bison stack), never crashes.
	nested := "SELECT f_unknown(" + strings.Repeat("(", 20000) + "1" + strings.Repeat(")", 20001)
	if got := cl.Classify(nested); got.Route != Primary {
		t.Fatalf("nested: %s", fmtClass(got))
	}
	for name, sql := range map[string]string{
		"unions":   "SELECT 1 FOR UPDATE" + strings.Repeat(" UNION SELECT 1", 30000),
		"is null":  "SELECT f_unknown(1" + strings.Repeat(" IS NULL", 60000) + ")",
		"isnull":   "SELECT f_unknown(1" + strings.Repeat(" ISNULL", 60000) + ")",
		"subquery": "SELECT " + strings.Repeat("(SELECT f_unknown(", 3000) + strings.Repeat("))", 3000),
		"collate":  "SELECT f_unknown('a'" + strings.Repeat(` COLLATE "C"`, 60000) + ")",
	} {
		if got := cl.Classify(sql); got.Route != Primary || got.Reason != "too-complex" {
			t.Errorf("%s: %s", name, fmtClass(got))
		}
	}
	// Long flat lists are not deep: the parser still reads them.
	ors := "SELECT substring(x FOR 1) FROM t WHERE a = 0" + strings.Repeat(" OR a = 1", 20000)
	if got := cl.Classify(ors); got.Route != Replica {
		t.Errorf("flat OR list: %s", fmtClass(got))
	}
	in := "SELECT * FROM t WHERE a IN (0" + strings.Repeat(", 1", 20000) + ") FOR UPDATE"
	if got := cl.Classify(in); got.Reason != "locking-clause" {
		t.Errorf("long IN list: %s", fmtClass(got))
	}
}

// TestFastPathDecides: the common shapes never reach the parser.
func TestFastPathDecides(t *testing.T) {
	cat := testCatalog()
	for _, sql := range []string{
		"SELECT id, name FROM users WHERE id = $1",
		"SELECT u.id, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.created_at > now() - interval '1 day' ORDER BY 2 DESC LIMIT 10",
		"SELECT count(*), max(ts) FROM events GROUP BY kind HAVING count(*) > 1",
		"SELECT * FROM t WHERE id IN (SELECT t_id FROM u WHERE lower(u.name) = $1)",
		"WITH x AS (SELECT * FROM t) SELECT * FROM x",
		"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
		"SELECT coalesce(a, 0), CAST(b AS numeric(10,2)), row_number() OVER (PARTITION BY c ORDER BY d) FROM t",
		"SELECT my_reader(x) FROM t",
		"SELECT * FROM generate_series(1, 10) AS g(n)",
		"VALUES (1), (2)", "TABLE t", "SHOW search_path", "EXPLAIN SELECT 1",
		"BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "COMMIT", "ROLLBACK", "SAVEPOINT a",
		"SET search_path TO a", "SET LOCAL x = 1", "RESET ALL", "DISCARD ALL",
		"INSERT INTO t VALUES (1, 'a')", "UPDATE t SET a = 1 WHERE id = 2", "DELETE FROM t WHERE id = 3",
		"CREATE TEMP TABLE x (a int)", "DROP TABLE x", "LISTEN c", "UNLISTEN *",
		"SELECT 1; SELECT 2", "/* baton:replica */ SELECT 1",
	} {
		if _, ok := classifyText(cat, sql, false, false); !ok {
			t.Errorf("fast path did not decide %q", sql)
		}
	}
}
