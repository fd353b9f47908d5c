package mytest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/myproxy"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// parkSoon makes idle sessions park after 50ms instead of limits.park_idle_after's 1s.
func parkSoon(cl *topology.Cluster) {
	cl.Limits.ParkIdleAfter = topology.Duration(50 * time.Millisecond)
}

func myServer(b *batontest.Baton) *myproxy.Server { return b.Inst.Clusters()[0].My }

// awaitParked waits until baton reports n parked sessions (served without a goroutine or
// buffers after limits.park_idle_after of idleness).
func awaitParked(t *testing.T, b *batontest.Baton, n int) {
	t.Helper()
	srv := myServer(b)
	cluster.Eventually(t, 10*time.Second, fmt.Sprintf("%d parked sessions", n), func() (bool, error) {
		if got := srv.ParkedSessions(); got != n {
			return false, fmt.Errorf("parked sessions = %d", got)
		}
		return true, nil
	})
}

// awaitSessions waits until baton counts n client sessions.
func awaitSessions(t *testing.T, b *batontest.Baton, n int64) {
	t.Helper()
	srv := myServer(b)
	cluster.Eventually(t, 10*time.Second, fmt.Sprintf("%d sessions", n), func() (bool, error) {
		if got := srv.Metrics().Sessions.Load(); got != n {
			return false, fmt.Errorf("sessions = %d", got)
		}
		return true, nil
	})
}

// singleConn opens one client connection (a database/sql pool of one, held as a *sql.Conn).
func singleConn(t *testing.T, ctx context.Context, dsn string) *sql.Conn {
	c, _ := singleConnDB(t, ctx, dsn)
	return c
}

func singleConnDB(t *testing.T, ctx context.Context, dsn string) (*sql.Conn, *sql.DB) {
	t.Helper()
	db := cluster.OpenMySQL(t, dsn)
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, db
}

// Idle clients park and resume on their next command with their session intact: each
// client's own session variables, user variables and server-side prepared statements, as on
// a direct connection; and they park again.
func TestParkedSessionsResume(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, parkSoon)
	ctx := ctxT(t)
	const n = 40
	conns := make([]*sql.Conn, n)
	stmts := make([]*sql.Stmt, n)
	var first *sql.DB
	for i := range conns {
		c, db := singleConnDB(t, ctx, b.DSN(my, ""))
		if i == 0 {
			first = db
		}
		conns[i] = c
		if _, err := c.ExecContext(ctx, fmt.Sprintf("SET SESSION group_concat_max_len = %d", 10000+i)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, fmt.Sprintf("SET @mine = %d", i)); err != nil {
			t.Fatal(err)
		}
		st, err := c.PrepareContext(ctx, fmt.Sprintf("SELECT %d + ?", i)) // COM_STMT_PREPARE
		if err != nil {
			t.Fatal(err)
		}
		stmts[i] = st
	}
	awaitParked(t, b, n)
	if got := myServer(b).Metrics().Sessions.Load(); got != n {
		t.Fatalf("sessions = %d with %d parked clients; want %d", got, n, n)
	}
	for round := 0; round < 2; round++ {
		for i, c := range conns {
			var gcl, mine, v int
			if err := c.QueryRowContext(ctx, "SELECT @@session.group_concat_max_len, @mine").Scan(&gcl, &mine); err != nil ||
				gcl != 10000+i || mine != i {
				t.Fatalf("round %d, client %d after parking: group_concat_max_len %d, @mine %d, %v", round, i, gcl, mine, err)
			}
			if err := stmts[i].QueryRowContext(ctx, 1000).Scan(&v); err != nil || v != i+1000 {
				t.Fatalf("round %d, client %d: its prepared statement gave %d, %v; want %d", round, i, v, err, i+1000)
			}
		}
		awaitParked(t, b, n) // and they park again
	}
	// A client that leaves while parked ends its session.
	conns[0].Close()
	first.Close()
	awaitSessions(t, b, n-1)
	awaitParked(t, b, n-1)
}

// A transaction keeps its session from parking (its goroutine waits on the client): the
// others park, and the transaction's session goes on.
func TestParkNotInTransaction(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, parkSoon)
	ctx := ctxT(t)
	idle := singleConn(t, ctx, b.DSN(my, ""))
	inTx := singleConn(t, ctx, b.DSN(my, ""))
	if _, err := idle.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := inTx.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	awaitParked(t, b, 1)
	// Several sweeps later, still only one.
	time.Sleep(300 * time.Millisecond) // deliberate: proving that nothing else happens
	if got := myServer(b).ParkedSessions(); got != 1 {
		t.Fatalf("parked sessions = %d with one client in a transaction; want 1", got)
	}
	var v int
	if err := inTx.QueryRowContext(ctx, "SELECT 7").Scan(&v); err != nil || v != 7 {
		t.Fatalf("in the transaction: %d, %v", v, err)
	}
	if _, err := inTx.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	awaitParked(t, b, 2)
}

// KILL [CONNECTION] of a parked client's thread id ends its session as the server ends an idle
// connection: the victim's next statement fails — the same as on a direct connection — and
// baton no longer counts it.
func TestParkedSessionKilled(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, parkSoon)
	ctx := ctxT(t)
	var failed [2]bool
	for i, dsn := range []string{my.Primary.AppDSN(), b.DSN(my, "")} {
		victim := singleConn(t, ctx, dsn)
		killer := singleConn(t, ctx, dsn)
		var id uint64
		if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := killer.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			awaitParked(t, b, 2) // the victim and the killer both idle
		}
		if _, err := killer.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
			t.Fatalf("%s: KILL: %v", dsn, err)
		}
		if i == 1 {
			awaitSessions(t, b, 1) // the victim's session ended while parked
			awaitParked(t, b, 1)   // the killer parks again
		}
		var v int
		failed[i] = victim.QueryRowContext(ctx, "SELECT 1").Scan(&v) != nil
	}
	if !failed[0] || !failed[1] {
		t.Fatalf("the killed idle client's next statement failed: direct %v, baton %v; want both", failed[0], failed[1])
	}
}

// A shutdown with parked sessions does not wait for them: each is woken and ends.
func TestParkedSessionsShutdown(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, parkSoon)
	ctx := ctxT(t)
	var conns []*sql.Conn
	for range 5 {
		c := singleConn(t, ctx, b.DSN(my, ""))
		if _, err := c.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	awaitParked(t, b, 5)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		b.Inst.Shutdown(30 * time.Second)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waited for parked idle sessions")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v with parked idle sessions", d)
	}
	if got := myServer(b).Metrics().Sessions.Load(); got != 0 {
		t.Fatalf("sessions = %d after the shutdown", got)
	}
	for i, c := range conns {
		var v int
		if err := c.QueryRowContext(context.Background(), "SELECT 1").Scan(&v); err == nil {
			t.Fatalf("client %d ran a statement after the shutdown", i)
		}
	}
}
