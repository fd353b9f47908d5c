package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// twoModes are the protocol paths most session tests run through: the simple protocol and
// pgx's default extended protocol with a statement cache.
var twoModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"cache-statement", pgx.QueryExecModeCacheStatement},
}

// uniqueName returns prefix followed by a random suffix: a table, channel or function name no
// other test (or earlier run against the same cluster) uses.
func uniqueName(prefix string) string {
	var b [5]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// appPrimary opens a connection straight to the primary as the application user (who owns
// the database, so the tables it creates are usable through baton).
func appPrimary(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.Primary.AppURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// setup runs DDL on the primary as the application user and waits until both replicas have
// replayed it.
func setup(t testing.TB, stmts ...string) {
	t.Helper()
	ctx := ctxT(t)
	c := appPrimary(t)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("setup %q: %v", s, err)
		}
	}
	caughtUp(t)
}

// caughtUp blocks until every replica has replayed all WAL the primary has inserted so far.
// The cluster runs with synchronous_commit = off, so a commit may sit unflushed (and unsent)
// for a while, and pg_current_wal_lsn() can be before it (waitReplicated compares with that).
// A synchronous commit of a transaction that wrote WAL flushes everything inserted before it;
// the flush position is then the target.
func caughtUp(t testing.TB) {
	t.Helper()
	ctx := ctxT(t)
	p := direct(t, pg.Primary)
	if _, err := p.Exec(ctx, "SET synchronous_commit = on; SELECT pg_logical_emit_message(true, 'pgtest', 'flush')"); err != nil {
		t.Fatal(err)
	}
	var lsn string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	for _, r := range pg.Replicas {
		rc := direct(t, r)
		cluster.Eventually(t, 20*time.Second, "replica "+r.Name+" replays "+lsn, func() (bool, error) {
			var ok bool
			err := rc.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&ok)
			return ok, err
		})
	}
}

// createTable creates a uniquely named table with the given column list on the primary,
// waits for the replicas, and returns its name.
func createTable(t testing.TB, prefix, cols string) string {
	t.Helper()
	name := uniqueName(prefix)
	setup(t, "CREATE TABLE "+name+" ("+cols+")")
	return name
}

// connectURL opens a pgx connection through the baton at u.
func connectURL(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect through baton: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// queryInt runs a one-value integer query on q.
func queryInt(t testing.TB, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRow(ctxT(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func wantPrimary(t testing.TB, what string, port int, replica bool) {
	t.Helper()
	if replica || port != pg.Primary.Port {
		t.Fatalf("%s ran on port %d (in recovery: %v); want the primary (port %d)", what, port, replica, pg.Primary.Port)
	}
}

func wantReplica(t testing.TB, what string, port int, replica bool) {
	t.Helper()
	if !replica || port == pg.Primary.Port || !isReplicaPort(port) {
		t.Fatalf("%s ran on port %d (in recovery: %v); want a replica (primary is %d)", what, port, replica, pg.Primary.Port)
	}
}

func isReplicaPort(port int) bool {
	for _, r := range pg.Replicas {
		if r.Port == port {
			return true
		}
	}
	return false
}

// sqlState returns the SQLSTATE of a PostgreSQL error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// assertServes proves the baton at u still serves a new client correctly: a read on a replica
// and a hinted read on the primary.
func assertServes(t testing.TB, u string) {
	t.Helper()
	ctx := ctxT(t)
	c := connectURL(t, u)
	port, rep := where(t, c, ctx, "")
	wantReplica(t, "a new client's read", port, rep)
	port, rep = where(t, c, ctx, "/* baton:primary */ ")
	wantPrimary(t, "a new client's hinted read", port, rep)
	c.Close(ctx)
}

// rawLogin logs in through the baton at u with pgconn and hijacks the socket, so the test can
// speak (or break) the protocol by hand.
func rawLogin(t testing.TB, u string) *pgconn.HijackedConn {
	t.Helper()
	ctx := ctxT(t)
	pc, err := pgconn.Connect(ctx, u)
	if err != nil {
		t.Fatalf("pgconn connect through baton: %v", err)
	}
	if err := pc.SyncConn(ctx); err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return hc
}

// batonAddr is the shared baton's listen address.
func batonAddr() string { return baton.Inst.Clusters()[0].Addr().String() }

// received is what a raw client read before the server closed the connection.
type received struct {
	errors  []pgproto3.ErrorResponse // every ErrorResponse, in order
	other   []string                 // the Go types of other messages
	closed  bool                     // the server closed the connection (EOF or reset)
	after   time.Duration            // how long until closed
	readErr error
}

// readUntilClosed reads backend messages from conn until the server closes it or timeout passes.
func readUntilClosed(conn net.Conn, fe *pgproto3.Frontend, timeout time.Duration) received {
	start := time.Now()
	conn.SetReadDeadline(start.Add(timeout))
	if fe == nil {
		fe = pgproto3.NewFrontend(conn, conn)
	}
	var r received
	for {
		m, err := fe.Receive()
		if err != nil {
			r.readErr = err
			var ne net.Error
			r.closed = !(errors.As(err, &ne) && ne.Timeout())
			r.after = time.Since(start)
			return r
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			r.errors = append(r.errors, *e)
		} else {
			r.other = append(r.other, typeName(m))
		}
	}
}

func typeName(m pgproto3.BackendMessage) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
}

// wantFatalThenClose checks that r holds exactly one FATAL ErrorResponse with code, and that
// the server then closed the connection.
func wantFatalThenClose(t testing.TB, what string, r received, code string) {
	t.Helper()
	if len(r.errors) != 1 || r.errors[0].Severity != "FATAL" || r.errors[0].Code != code {
		t.Fatalf("%s: got errors %+v (other messages %v); want one FATAL %s", what, r.errors, r.other, code)
	}
	if !r.closed {
		t.Fatalf("%s: the connection was still open after %v", what, r.after)
	}
}

// roundTrip sends msgs and reads until ReadyForQuery. It returns the ErrorResponse codes seen.
func roundTrip(t testing.TB, hc *pgconn.HijackedConn, msgs ...pgproto3.FrontendMessage) []string {
	t.Helper()
	for _, m := range msgs {
		hc.Frontend.Send(m)
	}
	if err := hc.Frontend.Flush(); err != nil {
		t.Fatal(err)
	}
	hc.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer hc.Conn.SetReadDeadline(time.Time{})
	var codes []string
	for {
		m, err := hc.Frontend.Receive()
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			codes = append(codes, m.Code)
		case *pgproto3.ReadyForQuery:
			return codes
		}
	}
}

// activeOn returns how many backends of node n are running a statement that starts with
// prefix and contains tag.
func activeOn(t testing.TB, c *pgx.Conn, prefix, tag string) (int64, error) {
	var n int64
	err := c.QueryRow(ctxT(t), `SELECT count(*) FROM pg_stat_activity
		WHERE state = 'active' AND query LIKE $1 AND strpos(query, $2) > 0`, prefix+"%", tag).Scan(&n)
	return n, err
}

// nodeRunning waits until one node runs a statement that starts with prefix and contains tag,
// and returns that node.
func nodeRunning(t testing.TB, prefix, tag string, timeout time.Duration) *cluster.PGNode {
	t.Helper()
	conns := map[*cluster.PGNode]*pgx.Conn{}
	for _, n := range pg.Nodes() {
		conns[n] = direct(t, n)
	}
	var found *cluster.PGNode
	cluster.Eventually(t, timeout, "the statement "+prefix+"… is running on a node", func() (bool, error) {
		for _, n := range pg.Nodes() {
			k, err := activeOn(t, conns[n], prefix, tag)
			if err != nil {
				return false, err
			}
			if k > 0 {
				found = n
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// goneEverywhere waits until no node runs a statement that starts with prefix and contains tag.
func goneEverywhere(t testing.TB, prefix, tag string, timeout time.Duration) {
	t.Helper()
	conns := map[*cluster.PGNode]*pgx.Conn{}
	for _, n := range pg.Nodes() {
		conns[n] = direct(t, n)
	}
	cluster.Eventually(t, timeout, "the statement "+prefix+"… no longer runs on any node", func() (bool, error) {
		for _, n := range pg.Nodes() {
			k, err := activeOn(t, conns[n], prefix, tag)
			if err != nil || k > 0 {
				return false, err
			}
		}
		return true, nil
	})
}
