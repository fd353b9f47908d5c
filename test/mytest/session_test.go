package mytest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"
)

var seq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s_%d", prefix, seq.Add(1)) }

// conn pins one client session (database/sql would otherwise spread statements over a pool).
func conn(t testing.TB, params string) *sql.Conn {
	t.Helper()
	c, err := open(t, params).Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustExec(t testing.TB, q interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(ctxT(t), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestTempTablePinsToPrimary(t *testing.T) {
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := conn(t, m.params)
			mustExec(t, c, "CREATE TEMPORARY TABLE tmp_x (v INT)")
			mustExec(t, c, "INSERT INTO tmp_x VALUES (7)")
			var v, port int
			if err := c.QueryRowContext(ctx, "SELECT v, @@port FROM tmp_x").Scan(&v, &port); err != nil {
				t.Fatalf("reading the temp table: %v", err)
			}
			if v != 7 {
				t.Fatalf("v = %d", v)
			}
			wantPrimary(t, "a read of a temporary table", port)
			wantPrimary(t, "any read of a session with a temporary table", where(t, c, ctx, ""))
		})
	}
}

func TestSetReplayedOnReplica(t *testing.T) {
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := conn(t, m.params)
			mustExec(t, c, "SET SESSION sql_mode = 'ANSI_QUOTES'")
			mustExec(t, c, "SET time_zone = '+05:45'")
			var mode, tz string
			var port int
			if err := c.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode, @@SESSION.time_zone, @@port").Scan(&mode, &tz, &port); err != nil {
				t.Fatal(err)
			}
			wantReplica(t, "a read after SET", port)
			if mode != "ANSI_QUOTES" || tz != "+05:45" {
				t.Fatalf("on the replica sql_mode=%q time_zone=%q; want the session's settings", mode, tz)
			}
		})
	}
}

func TestPreparedAcrossWriteAndTransaction(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("ps")
	db := open(t, "")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, v VARCHAR(20))")
	mustExec(t, db, "INSERT INTO "+tbl+" VALUES (1, 'one')")
	waitReplicated(t)
	c := conn(t, "")
	st, err := c.PrepareContext(ctx, "SELECT v, @@port FROM "+tbl+" WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var v string
	var port int
	if err := st.QueryRowContext(ctx, 1).Scan(&v, &port); err != nil || v != "one" {
		t.Fatalf("first execution: %q %v", v, err)
	}
	wantReplica(t, "a prepared read", port)
	mustExec(t, c, "UPDATE "+tbl+" SET v = 'uno' WHERE id = ?", 1)
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.StmtContext(ctx, st).QueryRowContext(ctx, 1).Scan(&v, &port); err != nil {
		t.Fatalf("the prepared statement inside a transaction: %v", err)
	}
	wantPrimary(t, "a prepared read inside a transaction (re-prepared there)", port)
	if v != "uno" {
		t.Fatalf("inside the transaction v = %q; want the committed update", v)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t)
	if err := st.QueryRowContext(ctx, 1).Scan(&v, &port); err != nil || v != "uno" {
		t.Fatalf("after the transaction: %q %v", v, err)
	}
	wantReplica(t, "the prepared read after the transaction", port)
}

func TestTransactionReadsOwnWrite(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("own")
	db := open(t, "")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (5)"); err != nil {
		t.Fatal(err)
	}
	var n, port int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*), @@port FROM "+tbl).Scan(&n, &port); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the transaction does not see its own row (count %d)", n)
	}
	wantPrimary(t, "a read inside a read-write transaction", port)
	tx.Rollback()
	if err := db.QueryRowContext(ctx, "/* baton:primary */ SELECT COUNT(*) FROM "+tbl).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after ROLLBACK count = %d, %v", n, err)
	}
}

func TestReadOnlyTransactionOnOneReplica(t *testing.T) {
	ctx := ctxT(t)
	c := conn(t, "")
	mustExec(t, c, "START TRANSACTION READ ONLY")
	first := where(t, c, ctx, "")
	wantReplica(t, "START TRANSACTION READ ONLY", first)
	for i := 0; i < 5; i++ {
		if p := where(t, c, ctx, ""); p != first {
			t.Fatalf("statement %d of the read-only transaction ran on %d, not %d", i, p, first)
		}
	}
	mustExec(t, c, "COMMIT")
}

func TestMisrouteRecovered(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("mis")
	db := open(t, "")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id INT AUTO_INCREMENT PRIMARY KEY, who INT)")
	waitReplicated(t)
	before := baton.Inst.Clusters()[0].My.Metrics().Misroutes()
	// The hint sends a write to a replica; its read-only refusal must be hidden and the write
	// done on the primary.
	if _, err := db.ExecContext(ctx, "/* baton:replica */ INSERT INTO "+tbl+" (who) VALUES (@@port)"); err != nil {
		// A classifier that refuses the hint for an obvious write routes it to the primary
		// directly: that is fine too, as long as the row lands there.
		t.Logf("hinted write: %v", err)
		t.FailNow()
	}
	var who int
	if err := db.QueryRowContext(ctx, "/* baton:primary */ SELECT who FROM "+tbl).Scan(&who); err != nil {
		t.Fatal(err)
	}
	wantPrimary(t, "the hinted write", who)
	_ = before
}

func TestBlob20MiB(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("blob")
	db := open(t, "maxAllowedPacket=0")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, b LONGBLOB)")
	blob := bytes.Repeat([]byte("0123456789abcdef"), 20<<20/16)
	blob[12345] = 0xfe
	if _, err := db.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (1, ?)", blob); err != nil {
		t.Fatalf("inserting 20 MiB: %v", err)
	}
	var got []byte
	if err := db.QueryRowContext(ctx, "/* baton:primary */ SELECT b FROM "+tbl+" WHERE id = 1").Scan(&got); err != nil {
		t.Fatalf("reading 20 MiB: %v", err)
	}
	if !bytes.Equal(got, blob) {
		t.Fatalf("round trip changed the blob (%d bytes back)", len(got))
	}
}

func TestWrongPassword(t *testing.T) {
	ctx := ctxT(t)
	dsn := strings.Replace(baton.DSN(my, ""), ":app@", ":wrong@", 1)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.PingContext(ctx)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("wrong password: %v; want error 1045", err)
	}
	wantReplica(t, "a read after a failed login", where(t, open(t, ""), ctx, ""))
}
