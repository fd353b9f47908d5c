package pgtest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/jackc/pgx/v5"
)

// TestGracefulShutdown: Shutdown stops accepting at once, ends idle sessions, lets an open
// transaction finish, and returns when it has.
func TestGracefulShutdown(t *testing.T) {
	ctx := ctxT(t)
	tbl := createTable(t, "shutdown", "id int PRIMARY KEY, who int")
	b := batontest.StartPGBatonForTest(t, pg, nil)
	u := b.URL(pg)
	addr := b.Inst.Clusters()[0].Addr().String()

	c := connectURL(t, u)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "INSERT INTO "+tbl+" VALUES (1, inet_server_port())"); err != nil {
		t.Fatal(err)
	}
	idle := connectURL(t, u)
	port, rep := where(t, idle, ctx, "")
	wantReplica(t, "an idle session's read", port, rep)

	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Inst.Shutdown(10 * time.Second)
	}()

	// New connections are refused.
	cluster.Eventually(t, 2*time.Second, "baton refuses new connections", func() (bool, error) {
		nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return true, nil
		}
		nc.Close()
		return false, nil
	})
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if nc, err := pgx.Connect(cctx, u); err == nil {
		nc.Close(ctx)
		cancel()
		t.Fatal("a new client connected during shutdown")
	}
	cancel()

	// A session idle outside a transaction is ended with 57P01.
	var idleErr error
	cluster.Eventually(t, 3*time.Second, "the idle session is terminated", func() (bool, error) {
		_, idleErr = idle.Exec(ctx, "SELECT 1")
		return idleErr != nil, nil
	})
	if sqlState(idleErr) != "57P01" {
		t.Fatalf("the idle session ended with %v; want SQLSTATE 57P01", idleErr)
	}
	if !idle.IsClosed() {
		t.Fatal("the idle session's connection is still open")
	}

	// The open transaction still runs statements and commits; Shutdown waits for it.
	select {
	case <-done:
		t.Fatal("Shutdown returned while a transaction was open")
	default:
	}
	port, rep = where(t, tx, ctx, "")
	wantPrimary(t, "a statement of the open transaction during shutdown", port, rep)
	if _, err := tx.Exec(ctx, "INSERT INTO "+tbl+" VALUES (2, inet_server_port())"); err != nil {
		t.Fatalf("a write of the open transaction during shutdown: %v", err)
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned while a transaction was open")
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("COMMIT during shutdown: %v", err)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return within 3s of the COMMIT")
	}
	if n := queryInt(t, direct(t, pg.Primary), "SELECT count(*) FROM "+tbl+" WHERE who = $1", pg.Primary.Port); n != 2 {
		t.Fatalf("the primary holds %d committed rows; want 2", n)
	}
}
