package mytest

import (
	"context"
	"database/sql"
	"strconv"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// TestServerLifetime (issue 9, item 7): a session's max_allowed_packet comes from the global
// value when its server connection was opened. After SET GLOBAL, a direct connection sees the
// new value at once; through baton a pooled connection keeps the old one until it outlives
// pool.server_lifetime and is replaced at checkout — with server_lifetime 0 (unlimited) it
// keeps it for good.
func TestServerLifetime(t *testing.T) {
	ctx := ctxT(t)
	start := func(life time.Duration) *batontest.Baton {
		b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
			cl.Pool.ServerLifetime = topology.Duration(life)
		})
		untilSnapshot(t, ctx, b.Inst.Clusters()[0], "baton knows the primary", func(s *topology.Snapshot) bool {
			return s.PrimaryNode() != nil
		})
		return b
	}
	// max_allowed_packet of a new session, through baton or directly (a new pool each time:
	// one connection to baton, so baton's pooled backend connection is what answers).
	packet := func(dsn string, b *batontest.Baton) int64 {
		t.Helper()
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		var v int64
		if err := db.QueryRowContext(ctx, "/* baton:primary */ SELECT @@max_allowed_packet").Scan(&v); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if b != nil { // the session has ended and given its backend connection back
			cluster.Eventually(t, 10*time.Second, "the session ended", func() (bool, error) {
				return b.Inst.Clusters()[0].My.Metrics().Sessions.Load() == 0, nil
			})
		}
		return v
	}
	short, unlimited := start(time.Second), start(0)
	root := cluster.OpenMySQL(t, my.Primary.RootDSN())
	var before int64
	if err := root.QueryRowContext(ctx, "SELECT @@GLOBAL.max_allowed_packet").Scan(&before); err != nil {
		t.Fatal(err)
	}
	after := before / 2
	for _, b := range []*batontest.Baton{short, unlimited} {
		if got := packet(b.DSN(my, ""), b); got != before {
			t.Fatalf("through baton before SET GLOBAL: %d, want %d", got, before)
		}
	}
	myExec(t, ctx, root, "SET GLOBAL max_allowed_packet = "+strconv.FormatInt(after, 10))
	t.Cleanup(func() {
		root.ExecContext(context.Background(), "SET GLOBAL max_allowed_packet = "+strconv.FormatInt(before, 10))
	})
	if got := packet(my.Primary.AppDSN(), nil); got != after {
		t.Fatalf("direct after SET GLOBAL: %d, want %d", got, after)
	}
	began := time.Now()
	cluster.Eventually(t, 20*time.Second, "a new session through baton (server_lifetime 1s) sees the new global", func() (bool, error) {
		return packet(short.DSN(my, ""), short) == after, nil
	})
	took := time.Since(began)
	// The pooled connection was reused until its lifetime was over; with no lifetime it still is.
	if got := packet(unlimited.DSN(my, ""), unlimited); got != before {
		t.Fatalf("server_lifetime 0: a new session got %d after %v; want the pooled connection's %d", got, took, before)
	}
	t.Logf("server_lifetime 1s: the new global reached baton's sessions after %v", took.Round(10*time.Millisecond))
}
