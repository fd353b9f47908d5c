package mytest

import (
	"database/sql"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
)

// closedByWaitTimeout sets wait_timeout 1 on session c (replayed on baton's backends), runs
// then, and waits until the primary has closed the session's idle primary connection.
func closedByWaitTimeout(t *testing.T, c *sql.Conn, then ...string) {
	t.Helper()
	ctx := ctxT(t)
	mustExec(t, c, "SET SESSION wait_timeout = 1")
	for _, q := range then {
		mustExec(t, c, q)
	}
	marker := unique("idle_marker")
	var id int64
	if err := c.QueryRowContext(ctx, "/* baton:primary */ SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%"+marker+"%'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	root := cluster.OpenMySQL(t, my.Primary.RootDSN())
	cluster.Eventually(t, 20*time.Second, "the server closed the idle connection (wait_timeout)", func() (bool, error) {
		var n int
		err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n)
		return n == 0, err
	})
}

// TestIdleBackendClosedWithPinnedState (issue 9, item 8): when the server closes the idle
// connection of a session holding a temporary table, the client's next statement fails and its
// connection is gone — through baton as directly.
func TestIdleBackendClosedWithPinnedState(t *testing.T) {
	type result struct{ firstFails, secondFails bool }
	var res [2]result
	for i, dsn := range []string{my.Primary.AppDSN(), baton.DSN(my, "")} {
		ctx := ctxT(t)
		c, err := cluster.OpenMySQL(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		closedByWaitTimeout(t, c, "CREATE TEMPORARY TABLE idle_tmp (i INT)", "INSERT INTO idle_tmp VALUES (1)")
		var n int
		err1 := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM idle_tmp").Scan(&n)
		err2 := c.QueryRowContext(ctx, "SELECT 1").Scan(&n)
		res[i] = result{err1 != nil, err2 != nil}
		if i == 1 && err1 != nil {
			t.Logf("through baton: %v; then %v", err1, err2)
		}
		c.Close()
	}
	if res[0] != res[1] || !res[1].firstFails || !res[1].secondFails {
		t.Fatalf("direct %+v; baton %+v; want both statements to fail", res[0], res[1])
	}
}

// TestIdleBackendClosedTransparent: without state baton cannot rebuild, a backend connection
// the server closed while the session was idle is replaced: the session's settings are
// replayed and its prepared statements re-prepared; the client notices nothing.
func TestIdleBackendClosedTransparent(t *testing.T) {
	ctx := ctxT(t)
	c := conn(t, "")
	mustExec(t, c, "SET time_zone = '+02:00'")
	st, err := c.PrepareContext(ctx, "/* baton:primary */ SELECT ? + 1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	closedByWaitTimeout(t, c)
	var tz string
	var wt, port int
	if err := c.QueryRowContext(ctx, "/* baton:primary */ SELECT @@time_zone, @@wait_timeout, @@port").Scan(&tz, &wt, &port); err != nil {
		t.Fatalf("after the server closed the idle connection: %v", err)
	}
	wantPrimary(t, "the hinted read", port)
	if tz != "+02:00" || wt != 1 {
		t.Fatalf("time_zone %q wait_timeout %d on the new connection; want the session's", tz, wt)
	}
	var v int
	if err := st.QueryRowContext(ctx, 41).Scan(&v); err != nil || v != 42 {
		t.Fatalf("the prepared statement after reconnecting: %d %v", v, err)
	}
}
