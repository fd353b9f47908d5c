package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL item 7: the process id a client was handed in BackendKeyData is the one that
// pg_cancel_backend / pg_terminate_backend act on, through baton as directly.
func TestIdentitySignalHandedPID(t *testing.T) {
	signal := func(t *testing.T, u, fn string) string {
		a, err := pgx.Connect(ctxT(t), u)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(context.Background())
		b := connectURL(t, u)
		done := make(chan error, 1)
		go func() {
			_, err := a.Exec(context.Background(), "select pg_sleep(20) /* identity "+fn+" */")
			done <- err
		}()
		// Wait until the sleep runs somewhere, then signal the pid a was handed.
		nodeRunning(t, "select pg_sleep(20) /* identity "+fn, fn, 10*time.Second)
		var ok bool
		if err := b.QueryRow(ctxT(t), fmt.Sprintf("select %s(%d)", fn, a.PgConn().PID())).Scan(&ok); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		var sleepErr error
		select {
		case sleepErr = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s(%d) returned %v but the sleep still runs after 10 s", fn, a.PgConn().PID(), ok)
		}
		_, after := a.Exec(ctxT(t), "select 1")
		return fmt.Sprintf("%v | sleep: %s | next: %s", ok, describeErr(sleepErr), describeErr(after))
	}
	t.Run("cancel", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string { return signal(t, u, "pg_cancel_backend") })
		if got != "true | sleep: ERROR 57014 canceling statement due to user request | next: ok" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("terminate", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string { return signal(t, u, "pg_terminate_backend") })
		if !strings.HasPrefix(got, "true | sleep: FATAL 57P01 terminating connection due to administrator command | next: ") {
			t.Fatalf("got %q", got)
		}
	})
}

// PostgreSQL item 7: a pid an administrator reads from a node's pg_stat_activity can be
// cancelled through baton, although the statement runs on a replica and pg_cancel_backend
// would otherwise run on the primary.
func TestIdentityCancelFromStatActivity(t *testing.T) {
	a := connect(t, pgx.QueryExecModeSimpleProtocol)
	b := connect(t, pgx.QueryExecModeSimpleProtocol)
	done := make(chan error, 1)
	go func() {
		_, err := a.Exec(context.Background(), "select pg_sleep(20) /* identity stat */")
		done <- err
	}()
	n := nodeRunning(t, "select pg_sleep(20) /* identity stat", "identity stat", 10*time.Second)
	if n == pg.Primary {
		t.Fatalf("the read ran on the primary; this test needs it on a replica")
	}
	var pid int
	if err := direct(t, n).QueryRow(ctxT(t), "select pid from pg_stat_activity where query like 'select pg_sleep(20) /* identity stat%'").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := b.QueryRow(ctxT(t), fmt.Sprintf("select pg_cancel_backend(%d)", pid)).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if sqlState(err) != "57014" || !ok {
			t.Fatalf("pg_cancel_backend(%d) = %v; the sleep ended with %v; want true and 57014", pid, ok, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("pg_cancel_backend(%d) = %v, but the sleep still runs after 10 s", pid, ok)
	}
}

// PostgreSQL item 7: the backend that holds a session's LISTEN dies while the session idles: the
// client learns at once (FATAL, connection closed), as on a direct connection. (In transaction
// mode that backend is the shared listening connection, whose last statement names ch.)
func TestIdentityListenBackendTerminated(t *testing.T) {
	got := bothWays(t, func(t *testing.T, u string) string {
		ch := uniqueName("fid_listen")
		c, err := pgx.Connect(ctxT(t), u+"&application_name="+ch)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctxT(t), "listen "+ch); err != nil {
			t.Fatal(err)
		}
		admin := direct(t, pg.Primary)
		var n int
		if err := admin.QueryRow(ctxT(t), "select count(pg_terminate_backend(pid)) from pg_stat_activity where pid <> pg_backend_pid() and query ilike 'listen %"+ch+"%'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("terminate the listening backend: %d, %v", n, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.WaitForNotification(ctx)
		return describeErr(err)
	})
	if !strings.HasPrefix(got, "FATAL 57P01 ") {
		t.Fatalf("got %q; want FATAL 57P01", got)
	}
}
