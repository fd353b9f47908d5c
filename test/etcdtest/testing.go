package etcdtest

import (
	"context"
	"testing"
	"time"
)

// buildTimeout bounds building the etcd binary (a cold build takes about a minute on two
// cores, more under a loaded CI machine); startTimeout bounds starting the members.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = time.Minute
)

// StartForTest starts an n-member cluster in a directory of t.TempDir() and stops it when the
// test ends (even when it fails; the tail of every member's log is logged then). A failure to
// build or start etcd fails the test, it never skips.
func StartForTest(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartForTestWith(t, n, Options{})
}

// StartForTestWith is StartForTest with options (Dir and Binary are filled in).
func StartForTestWith(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	bctx, bcancel := context.WithTimeout(context.Background(), buildTimeout)
	defer bcancel()
	bin, err := Binary(bctx)
	if err != nil {
		t.Fatalf("an etcd server is required by this test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	o.Dir, o.Binary = t.TempDir(), bin
	c, err := Start(ctx, n, o)
	if err != nil {
		t.Fatalf("start etcd cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.DumpLogs(t.Logf)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop etcd cluster: %v", err)
		}
	})
	return c
}
