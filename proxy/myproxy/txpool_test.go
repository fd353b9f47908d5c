package myproxy

import (
	"slices"
	"testing"

	"github.com/baton-proxy/baton/router"
)

func TestLastStatementQuery(t *testing.T) {
	for _, tc := range []struct {
		q       string
		fn, col string
		ok      bool
	}{
		{"SELECT ROW_COUNT()", "row_count", "ROW_COUNT()", true},
		{"select found_rows()", "found_rows", "found_rows()", true},
		{"  SELECT  ROW_COUNT( )  ;", "row_count", "ROW_COUNT( )", true},
		{"SELECT ROW_COUNT() AS rc", "row_count", "rc", true},
		{"SELECT FOUND_ROWS() `n`", "found_rows", "n", true},
		{"SELECT FOUND_ROWS() AS `a b`", "found_rows", "a b", true},
		{"SELECT ROW_COUNT() + 1", "", "", false},
		{"SELECT ROW_COUNT() FROM t", "", "", false},
		{"SELECT ROW_COUNT(), 1", "", "", false},
		{"SELECT ROW_COUNTX()", "", "", false},
		{"/* c */ SELECT ROW_COUNT()", "", "", false},
		{"SELECT ROW_COUNT() AS", "", "", false},
		{"SELECTROW_COUNT()", "", "", false},
		{"SELECT ROW_COUNT() AS `x`y`", "", "", false},
	} {
		fn, col, ok := lastStatementQuery(tc.q)
		if fn != tc.fn || col != tc.col || ok != tc.ok {
			t.Errorf("%q: %q %q %v; want %q %q %v", tc.q, fn, col, ok, tc.fn, tc.col, tc.ok)
		}
	}
}

func TestReplayableUserSet(t *testing.T) {
	for _, tc := range []struct {
		q    string
		vars []string
	}{
		{"SET @a = 1", []string{"a"}},
		{"set @A := -1.5e3, @`b c` = 'x''y', @c = NULL", []string{"a", "b c", "c"}},
		{"SET @a = TRUE;", []string{"a"}},
		{"SET @a = \"s\"", []string{"a"}},
		{"SET @a = 'x\\'y'", nil},    // backslash: depends on sql_mode
		{"SET @a = @b", nil},         // reads another variable
		{"SET @a = (SELECT 1)", nil}, // runs a query
		{"SET @a = NOW()", nil},      // a function
		{"SET @a = 1, time_zone = '+00:00'", nil},
		{"SET @a = 1; SET @b = 2", nil},
		{"SET @@session.x = 1", nil},
		{"SET /*! @a = 1 */", nil},
		{"SELECT @a := 1", nil},
		{"SET @a = _utf8mb4'x'", nil},
		{"SET @a = 1 + 1", nil},
	} {
		vars, ok := replayableUserSet(tc.q)
		if ok != (tc.vars != nil) || !slices.Equal(vars, tc.vars) {
			t.Errorf("%q: %q %v; want %q", tc.q, vars, ok, tc.vars)
		}
	}
}

func TestUsesTables(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT * FROM t":          true,
		"INSERT INTO t VALUES (1)": true,
		"UPDATE t SET v = 1":       true,
		"SELECT 1 FROM DUAL":       false,
		"SELECT 1":                 false,
		"SET time_zone = '+00:00'": false,
		"SELECT a FROM `q`":        true,
		"SHOW WARNINGS":            false,
		"DO (SELECT 1 FROM information_schema.CHARACTER_SETS LIMIT 0)": true,
		"SELECT 'from x'":      false,
		"SELECT 'a\\b' FROM t": false, // the lexer is unsure: keep the warnings
	} {
		if got := usesTables(q); got != want {
			t.Errorf("%q: %v; want %v", q, got, want)
		}
	}
	if !usesTables(clearDiagnostics) {
		t.Error("clearDiagnostics must use a table")
	}
}

// The named state behind pins: each kind ends when its names are gone, and not before; what
// baton cannot follow keeps the pin.
func TestPinStateFollowsNames(t *testing.T) {
	cls := func(p router.Pin) router.Class { return router.Class{Pin: p} }
	run := func(ps *pinState, q string, c router.Class) {
		t.Helper()
		toks, ok := sqlTokens(q)
		if !ok {
			t.Fatalf("%q: not lexed", q)
		}
		ps.follow(toks, c)
	}
	t.Run("temp_table", func(t *testing.T) {
		var ps pinState
		run(&ps, "CREATE TEMPORARY TABLE a (x INT)", cls(router.PinTempTable))
		run(&ps, "CREATE TEMPORARY TABLE IF NOT EXISTS `b` (x INT)", cls(router.PinTempTable))
		run(&ps, "CREATE TEMPORARY TABLE db1.c (x INT)", cls(router.PinTempTable))
		run(&ps, "DROP TEMPORARY TABLE a", router.Class{})
		if ps.ended(router.PinTempTable) != 0 {
			t.Fatal("ended with b and db1.c left")
		}
		run(&ps, "USE other", router.Class{})
		run(&ps, "DROP TEMPORARY TABLE IF EXISTS b", router.Class{}) // another database's b
		run(&ps, "DROP TABLE db1.c", router.Class{})
		if ps.ended(router.PinTempTable) != 0 {
			t.Fatal("ended although b (of the first database) is left")
		}
		// Once the database changed, an unqualified b can no longer be told from another
		// database's b: the pin lasts (baton cannot be sure the table went).
		run(&ps, "USE back", router.Class{})
		run(&ps, "DROP TEMPORARY TABLE b", router.Class{})
		if ps.ended(router.PinTempTable) != 0 {
			t.Fatal("ended although b may still exist")
		}
		ps = pinState{}
		run(&ps, "CREATE TEMPORARY TABLE a (x INT)", cls(router.PinTempTable))
		run(&ps, "CREATE TEMPORARY TABLE b (x INT)", cls(router.PinTempTable))
		run(&ps, "DROP TABLE IF EXISTS a, `b`", router.Class{})
		if ps.ended(router.PinTempTable) == 0 {
			t.Fatalf("not ended: %v", ps.temp)
		}
		run(&ps, "CREATE TEMPORARY TABLE t SELECT 1", cls(router.PinTempTable))
		run(&ps, "CREATE TEMPORARY SEQUENCE s", cls(router.PinTempTable))
		run(&ps, "DROP TEMPORARY TABLE t", router.Class{})
		if ps.ended(router.PinTempTable) != 0 {
			t.Fatal("ended although the temporary sequence was not followed")
		}
	})
	t.Run("advisory_lock", func(t *testing.T) {
		var ps pinState
		run(&ps, "SELECT GET_LOCK('L', 1), GET_LOCK('m', 1)", cls(router.PinAdvisoryLock))
		run(&ps, "SELECT GET_LOCK('l', 1)", cls(router.PinAdvisoryLock))
		run(&ps, "SELECT RELEASE_LOCK('l'), RELEASE_LOCK('M')", router.Class{})
		if ps.ended(router.PinAdvisoryLock) != 0 {
			t.Fatal("ended with one hold of l left")
		}
		run(&ps, "DO RELEASE_LOCK('l')", router.Class{})
		if ps.ended(router.PinAdvisoryLock) == 0 {
			t.Fatalf("not ended: %v", ps.locks)
		}
		run(&ps, "SELECT GET_LOCK(CONCAT('a', 'b'), 1)", cls(router.PinAdvisoryLock))
		run(&ps, "SELECT RELEASE_LOCK('ab')", router.Class{})
		if ps.ended(router.PinAdvisoryLock) != 0 {
			t.Fatal("ended although the lock's name was an expression")
		}
	})
	t.Run("sql_prepare", func(t *testing.T) {
		var ps pinState
		run(&ps, "PREPARE s1 FROM 'SELECT 1'", cls(router.PinPrepare))
		run(&ps, "PREPARE `S2` FROM @q", cls(router.PinPrepare))
		run(&ps, "DEALLOCATE PREPARE s1", router.Class{})
		if ps.ended(router.PinPrepare) != 0 {
			t.Fatal("ended with s2 left")
		}
		run(&ps, "DROP PREPARE s2", router.Class{})
		if ps.ended(router.PinPrepare) == 0 {
			t.Fatalf("not ended: %v", ps.prepared)
		}
	})
	t.Run("user_variable", func(t *testing.T) {
		var ps pinState
		run(&ps, "SELECT @a := 1, @B := 2", cls(router.PinUserVar))
		ps.forgetVars([]string{"a"})
		if ps.ended(router.PinUserVar) != 0 {
			t.Fatal("ended with @b left")
		}
		ps.forgetVars([]string{"b"})
		if ps.ended(router.PinUserVar) == 0 {
			t.Fatalf("not ended: %v", ps.vars)
		}
	})
}

func TestIsPrefix(t *testing.T) {
	h := []string{"SET a = 1", "USE d", "SET b = 2"}
	for _, tc := range []struct {
		a    []string
		want bool
	}{
		{nil, true},
		{h[:1], true},
		{h, true},
		{[]string{"SET a = 1", "SET b = 2"}, false},
		{append(h[:3:3], "SET c = 3"), false},
	} {
		if got := isPrefix(tc.a, h); got != tc.want {
			t.Errorf("isPrefix(%q): %v; want %v", tc.a, got, tc.want)
		}
	}
}

func TestSetsLastInsertID(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT LAST_INSERT_ID()":                  false,
		"SELECT last_insert_id( )":                 false,
		"SELECT LAST_INSERT_ID(5)":                 true,
		"UPDATE s SET id = LAST_INSERT_ID(id + 1)": true,
		"SELECT 1":                        false,
		"SELECT 'a\\b', LAST_INSERT_ID()": true, // not lexed: may set it
	} {
		if got := setsLastInsertID(q); got != want {
			t.Errorf("%q: %v; want %v", q, got, want)
		}
	}
}
