package pgtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// awaitParked waits until baton reports n parked sessions (the sessions it serves without a
// goroutine after limits.park_idle_after of idleness).
func awaitParked(t *testing.T, b *batontest.Baton, n int) {
	t.Helper()
	srv := b.Inst.Clusters()[0].PG
	deadline := time.Now().Add(10 * time.Second)
	for srv.ParkedSessions() != n {
		if time.Now().After(deadline) {
			t.Fatalf("parked sessions = %d; want %d", srv.ParkedSessions(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Idle clients park (their goroutine and read buffer are given back) and resume on their next
// message with their session intact: each client's own settings, prepared statements and
// writes, as on a direct connection.
func TestParkedSessionsResume(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.Limits.ParkIdleAfter = topology.Duration(50 * time.Millisecond)
	})
	ctx := ctxT(t)
	tbl := createTable(t, "parked", "i int, who text")
	const n = 40
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = connectURL(t, b.URL(pg))
		c := conns[i]
		if _, err := c.Exec(ctx, fmt.Sprintf("set application_name = 'parked-%d'", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Prepare(ctx, "mine", fmt.Sprintf("select %d + $1::int", i)); err != nil {
			t.Fatal(err)
		}
	}
	awaitParked(t, b, n)
	for round := 0; round < 2; round++ {
		for i, c := range conns {
			var app string
			var v int
			if err := c.QueryRow(ctx, "show application_name").Scan(&app); err != nil || app != fmt.Sprintf("parked-%d", i) {
				t.Fatalf("round %d, client %d after parking: application_name %q, %v", round, i, app, err)
			}
			if err := c.QueryRow(ctx, "mine", 1000).Scan(&v); err != nil || v != i+1000 {
				t.Fatalf("round %d, client %d: its prepared statement gave %d, %v; want %d", round, i, v, err, i+1000)
			}
			if _, err := c.Exec(ctx, "insert into "+tbl+" values ($1, current_setting('application_name'))", i); err != nil {
				t.Fatal(err)
			}
		}
		awaitParked(t, b, n) // and they park again
	}
	var rows int
	if err := connectURL(t, pg.Primary.AppURL()).QueryRow(ctx, "select count(*) from "+tbl+" where who = 'parked-' || i").Scan(&rows); err != nil || rows != 2*n {
		t.Fatalf("rows written by their own sessions: %d, %v; want %d", rows, err, 2*n)
	}
	// A client that leaves while parked ends its session.
	before := b.Inst.Clusters()[0].PG.Metrics().Sessions.Load()
	conns[0].Close(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for b.Inst.Clusters()[0].PG.Metrics().Sessions.Load() != before-1 {
		if time.Now().After(deadline) {
			t.Fatalf("sessions = %d after a parked client left; want %d", b.Inst.Clusters()[0].PG.Metrics().Sessions.Load(), before-1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	awaitParked(t, b, n-1)
}

// pg_terminate_backend of a parked session's process id ends it as the server ends an idle
// backend: the client's next statement gets FATAL 57P01 — the same as on a direct connection.
func TestParkedSessionTerminated(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.Limits.ParkIdleAfter = topology.Duration(50 * time.Millisecond)
	})
	ctx := ctxT(t)
	for _, target := range []struct{ name, url string }{{"direct", pg.Primary.AppURL()}, {"baton", b.URL(pg)}} {
		victim := connectURL(t, target.url)
		killer := connectURL(t, target.url+"&default_query_exec_mode=simple_protocol")
		if _, err := victim.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		if target.name == "baton" {
			awaitParked(t, b, 2) // the victim and the killer both idle
		}
		var ok bool
		if err := killer.QueryRow(ctx, fmt.Sprintf("select pg_terminate_backend(%d)", victim.PgConn().PID())).Scan(&ok); err != nil || !ok {
			t.Fatalf("%s: pg_terminate_backend = %v, %v", target.name, ok, err)
		}
		_, err := victim.Exec(ctx, "select 1")
		if code := sqlState(err); code != "57P01" {
			t.Fatalf("%s: the terminated idle session's next statement: %v (SQLSTATE %q); want 57P01", target.name, err, code)
		}
	}
}

// A shutdown with parked sessions does not wait for them: each is woken and told, as the
// server tells its idle clients.
func TestParkedSessionsShutdown(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.Limits.ParkIdleAfter = topology.Duration(50 * time.Millisecond)
	})
	ctx := ctxT(t)
	var conns []*pgx.Conn
	for range 5 {
		c := connectURL(t, b.URL(pg))
		if _, err := c.Exec(ctx, "select 1"); err != nil {
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
	for i, c := range conns {
		if _, err := c.Exec(context.Background(), "select 1"); err == nil {
			t.Fatalf("client %d ran a statement after the shutdown", i)
		}
	}
}
