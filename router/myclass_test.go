package router

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// myCase is one entry of the MySQL table. Expected values come from MySQL / MariaDB semantics
// and the rules documented on MyClassifier; every field of myX not written is expected to be
// zero (reason "" is not checked).
type myCase struct {
	sql    string
	route  Route
	reason string
	x      myX
}

// myX holds the less common expectations.
type myX struct {
	tx     TxEffect
	sess   bool
	pin    Pin
	unpin  Pin
	multi  bool
	hint   bool
	copyIn bool
}

// myAllowed are the stored functions the table's classifier allow-lists.
var myAllowed = []string{"price_with_tax", "Reporting.Monthly_Total"}

// allMyCases gathers the tables of the mycases_*_test.go files.
func allMyCases() []myCase {
	var all []myCase
	for _, t := range [][]myCase{myReadCases, myShowExplainCases, myLockCases, myFuncVarCases,
		myTxCases, mySetCases, myWriteCases, myAdminPinCases, myLexCases, myMultiHintCases} {
		all = append(all, t...)
	}
	return all
}

func TestMyCaseTable(t *testing.T) {
	all := allMyCases()
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

// TestMyClassify runs the table through the full classifier (lexical pass, cache, structural
// pass), again from the cache, and through the structural pass alone.
func TestMyClassify(t *testing.T) {
	full := NewMyClassifier(1000, WithAllowedFunctions(myAllowed...))
	structOnly := NewMyClassifier(0, WithAllowedFunctions(myAllowed...))
	structOnly.structOnly = true
	for _, c := range allMyCases() {
		t.Run(caseNameMy(c.sql), func(t *testing.T) {
			checkMy(t, "classify", c, full.Classify(c.sql))
			checkMy(t, "again", c, full.Classify(c.sql))
			checkMy(t, "structural", c, structOnly.Classify(c.sql))
		})
	}
}

func checkMy(t *testing.T, path string, c myCase, got Class) {
	t.Helper()
	want := Class{Route: c.route, Reason: got.Reason, Tx: c.x.tx, SessionState: c.x.sess, Pin: c.x.pin,
		Unpin: c.x.unpin, Multi: c.x.multi, Hint: c.x.hint, CopyIn: c.x.copyIn}
	if c.reason != "" {
		want.Reason = c.reason
	}
	if got != want {
		t.Errorf("%s: %q\n got  %s\n want %s", path, c.sql, fmtMyClass(got), fmtMyClass(want))
	}
}

func fmtMyClass(c Class) string {
	return fmt.Sprintf("%s reason=%q tx=%d sess=%v reset=%v pin=%#x unpin=%#x multi=%v hint=%v in=%v out=%v",
		c.Route, c.Reason, c.Tx, c.SessionState, c.ResetAll, c.Pin, c.Unpin, c.Multi, c.Hint, c.CopyIn, c.CopyOut)
}

func caseNameMy(sql string) string {
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

// TestMyCacheHitEqualsMiss: a cached verdict equals the computed one, only texts that needed
// the structural rules are cached, and the cache stays bounded.
func TestMyCacheHitEqualsMiss(t *testing.T) {
	cl := NewMyClassifier(10000, WithAllowedFunctions(myAllowed...))
	for _, c := range allMyCases() {
		miss := cl.Classify(c.sql)
		hit := cl.Classify(c.sql)
		if miss != hit {
			t.Errorf("%q: miss %s, hit %s", c.sql, fmtMyClass(miss), fmtMyClass(hit))
		}
	}
	if cl.cache.len() == 0 {
		t.Fatal("nothing was cached")
	}
	if _, ok := cl.cache.get("SELECT 1"); ok {
		t.Error("a text decided by the lexical pass was cached")
	}
	structural := "SELECT * FROM (SELECT a, b FROM t) AS d (x, y)"
	if _, ok := cl.cache.get(structural); !ok {
		t.Errorf("%q was not cached", structural)
	}
	small := NewMyClassifier(64)
	for i := 0; i < 5000; i++ {
		small.Classify(fmt.Sprintf("SELECT * FROM (SELECT %d) AS d (x)", i))
	}
	if n := small.cache.len(); n > 64+cacheShards {
		t.Errorf("cache holds %d entries, want about 64", n)
	}
}

// TestMyConcurrent classifies the table from many goroutines at once (run with -race): the
// answers must not depend on interleaving.
func TestMyConcurrent(t *testing.T) {
	cl := NewMyClassifier(50, WithAllowedFunctions(myAllowed...)) // small: evictions race with lookups
	all := allMyCases()
	want := make([]Class, len(all))
	ref := NewMyClassifier(0, WithAllowedFunctions(myAllowed...))
	for i, c := range all {
		want[i] = ref.Classify(c.sql)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for round := 0; round < 5; round++ {
				for k := range all {
					i := (k*7 + g*13 + round) % len(all)
					if got := cl.Classify(all[i].sql); got != want[i] {
						select {
						case errs <- fmt.Sprintf("%q: %s, want %s", all[i].sql, fmtMyClass(got), fmtMyClass(want[i])):
						default:
						}
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestMyLexicalPassDecides: the common shapes never need the structural rules (nor the cache).
func TestMyLexicalPassDecides(t *testing.T) {
	cl := NewMyClassifier(0)
	for _, sql := range []string{
		"SELECT id, name FROM users WHERE id = ?",
		"SELECT u.id, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.created_at > NOW() - INTERVAL 1 DAY ORDER BY 2 DESC LIMIT 10",
		"SELECT COUNT(*), MAX(ts) FROM events GROUP BY kind HAVING COUNT(*) > 1",
		"SELECT * FROM t WHERE id IN (SELECT t_id FROM u WHERE LOWER(u.name) = ?)",
		"WITH x AS (SELECT * FROM t) SELECT * FROM x",
		"WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
		"SELECT ROW_NUMBER() OVER (PARTITION BY c ORDER BY d) FROM t",
		"SELECT * FROM t FOR UPDATE SKIP LOCKED", "SELECT @a := 1", "SELECT my_fn(x) FROM t",
		"SELECT /*!40001 SQL_NO_CACHE */ * FROM t", "SELECT * FROM t WHERE name = 'O\\'Brien'",
		"TABLE t", "VALUES ROW(1)", "SHOW TABLES", "SHOW SLAVE STATUS", "EXPLAIN SELECT 1", "DESCRIBE t",
		"BEGIN", "START TRANSACTION READ ONLY", "COMMIT", "ROLLBACK TO sp", "SAVEPOINT sp", "XA START 'x'",
		"SET NAMES utf8mb4", "SET autocommit = 0", "SET @a = 1", "SET GLOBAL x = 1", "USE db",
		"INSERT INTO t VALUES (1, 'a')", "UPDATE t SET a = 1 WHERE id = 2", "DELETE FROM t WHERE id = 3",
		"CREATE TEMPORARY TABLE x (a INT)", "LOCK TABLES t READ", "UNLOCK TABLES", "CALL p(@x)",
		"SELECT 1; SELECT 2", "/* baton:replica */ SELECT f(1)", "CREATE PROCEDURE p() BEGIN SELECT 1; END",
	} {
		if _, ok := cl.classify(sql, false); !ok {
			t.Errorf("lexical pass did not decide %q", sql)
		}
	}
	for _, sql := range []string{
		"SELECT * FROM (SELECT 1) AS d (x)",
		"SELECT CAST(a AS DATETIME(6)) FROM t",
		"SELECT `f`(1)",
	} {
		if _, ok := cl.classify(sql, false); ok {
			t.Errorf("lexical pass decided %q, which needs the structural rules", sql)
		}
	}
}

// TestMyAllowList: allow-listing never makes a primary-only built-in replica-safe, and a name
// matches only in the form it was listed.
func TestMyAllowList(t *testing.T) {
	cl := NewMyClassifier(10, WithAllowedFunctions("get_lock", "last_insert_id", " `App`.`Fn` ", "plain"))
	for sql, want := range map[string]string{
		"SELECT GET_LOCK('a', 1)":  "advisory-lock",
		"SELECT LAST_INSERT_ID()":  "volatile-function:last_insert_id",
		"SELECT app.fn(1)":         "select",
		"SELECT APP.FN(1)":         "select",
		"SELECT fn(1)":             "unknown-function:fn",
		"SELECT plain(1)":          "select",
		"SELECT other.plain(1)":    "unknown-function:other.plain",
		"SELECT `plain`(1)":        "select",
		"SELECT * FROM t(1)":       "unknown-function:t", // not SQL: the server rejects it
		"SELECT nope(1), plain(2)": "unknown-function:nope",
	} {
		if got := cl.Classify(sql); got.Reason != want {
			t.Errorf("%q: %s, want reason %q", sql, fmtMyClass(got), want)
		}
	}
}

// TestMyLongAndDeep: long flat texts and deep nesting are decided without recursion trouble.
func TestMyLongAndDeep(t *testing.T) {
	cl := NewMyClassifier(10)
	long := "SELECT 1" + strings.Repeat(" + 1", 100000)
	if got := cl.Classify(long); got.Route != Replica {
		t.Errorf("long read: %s", fmtMyClass(got))
	}
	in := "SELECT * FROM t WHERE a IN (0" + strings.Repeat(", 1", 50000) + ") FOR UPDATE"
	if got := cl.Classify(in); got.Reason != "locking-clause" {
		t.Errorf("long IN list: %s", fmtMyClass(got))
	}
	deep := "SELECT " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	if got := cl.Classify(deep); got.Route != Replica {
		t.Errorf("deep nesting: %s", fmtMyClass(got))
	}
	unbalanced := "SELECT " + strings.Repeat("(", 100000) + "1"
	if got := cl.Classify(unbalanced); got.Reason != "parse-error" {
		t.Errorf("unbalanced: %s", fmtMyClass(got))
	}
	many := strings.Repeat("SELECT 1;", 20000) + "UPDATE t SET a = 1"
	if got := cl.Classify(many); got.Reason != "write" || !got.Multi {
		t.Errorf("many statements: %s", fmtMyClass(got))
	}
	nested := strings.Repeat("SET STATEMENT a = 1 FOR ", 50) + "SELECT 1"
	if got := cl.Classify(nested); got.Route != Primary {
		t.Errorf("nested SET STATEMENT: %s", fmtMyClass(got))
	}
	for sql, want := range map[string]string{
		strings.Repeat("/*!", 30000):                                         "parse-error",
		strings.Repeat("/*!99999 */", 30000):                                 "empty",
		strings.Repeat(";", 100000):                                          "empty",
		strings.Repeat("CREATE PROCEDURE p() BEGIN ", 10000):                 "ddl",
		"SET " + strings.Repeat("@a = 1, ", 30000) + "b = 2":                 "set",
		"SELECT 1 " + strings.Repeat("INTO @a, ", 30000) + "@b":              "select-into",
		"SELECT " + strings.Repeat("f(", 30000) + strings.Repeat(")", 30000): "unknown-function:f",
	} {
		if got := cl.Classify(sql); got.Reason != want {
			t.Errorf("%.40q...: %s, want reason %q", sql, fmtMyClass(got), want)
		}
	}
}

func TestReadsLastStatement(t *testing.T) {
	c := NewMyClassifier(100)
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"SHOW WARNINGS", true},
		{"show count(*) errors", true},
		{"SELECT @@warning_count", true},
		{"SELECT ROW_COUNT()", true},
		{"SELECT FOUND_ROWS() AS n", true},
		{"GET DIAGNOSTICS @n = NUMBER", true},
		{"SHOW PROFILES", false},
		{"SELECT ROW_COUNT(), LAST_INSERT_ID()", false},
		{"SELECT 1; SHOW WARNINGS", false},
		{"/* baton:primary */ SHOW WARNINGS", false},
		{"SELECT 1", false},
	} {
		if got := ReadsLastStatement(c.Classify(tc.q)); got != tc.want {
			t.Errorf("ReadsLastStatement(%q) = %v; want %v (%+v)", tc.q, got, tc.want, c.Classify(tc.q))
		}
	}
}

func TestMyUserVars(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"GET DIAGNOSTICS @n = NUMBER, @r = ROW_COUNT", []string{"@n", "@r"}},
		{"GET DIAGNOSTICS CONDITION 1 @`m x` = MESSAGE_TEXT, @n = MYSQL_ERRNO, @n = RETURNED_SQLSTATE", []string{"@`m x`", "@n"}},
		{"SELECT '@no' /* @no */", nil},
	} {
		if got := MyUserVars(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("MyUserVars(%q) = %q; want %q", tc.q, got, tc.want)
		}
	}
}
