package pgtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
)

// users[].pool_size bounds one user's backend connections per node below pool.size: with a size
// of 1, a second session's write waits for the first session's transaction and times out with
// 57P03 naming the setting; once the transaction ends the write runs.
func TestUserPoolSize(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Users[0].PoolSize = 1
		cl.Pool.AcquireTimeout = topology.Duration(300 * time.Millisecond)
	})
	ctx := ctxT(t)
	tbl := createTable(t, "userpool", "i int")
	a := connectURL(t, b.URL(pg))
	other := connectURL(t, b.URL(pg))
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into "+tbl+" values (1)"); err != nil {
		t.Fatal(err)
	}
	_, err = other.Exec(ctx, "insert into "+tbl+" values (2)")
	if sqlState(err) != "57P03" || !strings.Contains(err.Error(), "users[].pool_size") {
		t.Fatalf("a second session's write while the user's only primary connection is in a transaction: %v; want 57P03 naming users[].pool_size", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(context.Background(), "insert into "+tbl+" values (2)"); err != nil {
		t.Fatalf("the write once the transaction ended: %v", err)
	}
}
