package mytest

import (
	"testing"

	"github.com/baton-proxy/baton/test/cluster"
)

// TestPreparedSetIsSessionState (issue 9, item 2): a SET sent as a prepared statement
// (COM_STMT_PREPARE / EXECUTE) is session state like a text SET: a later read on a replica
// answers with it. With a parameter the SET cannot be replayed as text: the session stays on
// the primary and still answers right.
func TestPreparedSetIsSessionState(t *testing.T) {
	ctx := ctxT(t)
	type answer struct {
		tz1, tz2 string
		port1    int
	}
	var got [2]answer
	for i, dsn := range []string{my.Primary.AppDSN(), baton.DSN(my, "")} {
		c, err := cluster.OpenMySQL(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st, err := c.PrepareContext(ctx, "SET time_zone = '+05:00'")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ExecContext(ctx); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if err := c.QueryRowContext(ctx, "SELECT @@time_zone, @@port").Scan(&got[i].tz1, &got[i].port1); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			wantReplica(t, "a read after a prepared SET", got[i].port1)
		}
		// go-sql-driver sends a statement with arguments as COM_STMT_PREPARE + EXECUTE.
		if _, err := c.ExecContext(ctx, "SET time_zone = ?", "+04:00"); err != nil {
			t.Fatal(err)
		}
		var port int
		if err := c.QueryRowContext(ctx, "SELECT @@time_zone, @@port").Scan(&got[i].tz2, &port); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			wantPrimary(t, "a read after a prepared SET with a parameter", port)
		}
		got[i].port1 = 0
	}
	if got[0] != got[1] || got[1].tz1 != "+05:00" || got[1].tz2 != "+04:00" {
		t.Fatalf("direct %+v, baton %+v", got[0], got[1])
	}
}
