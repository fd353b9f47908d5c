package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// startTimeout bounds StartPGForTest; a cluster normally starts in a few
// seconds, but -race and a loaded CI machine slow everything down.
const startTimeout = 2 * time.Minute

// RequirePG fails the test, never skips it, when the PostgreSQL server
// binaries are missing or cannot be run from this account, with a message
// saying how to install them.
func RequirePG(t testing.TB) {
	t.Helper()
	if _, err := PGBinDir(); err != nil {
		t.Fatalf("PostgreSQL is required by this test: %v", err)
	}
	if _, err := lookupServerUser(); err != nil {
		t.Fatalf("PostgreSQL is required by this test: %v", err)
	}
}

// StartPGForTest starts a cluster with Fast set, logging through t.Logf
// unless o.Logf is set, and stops it when the test ends. A failure to
// start fails the test after logging the tail of each server log; so does
// a failure to stop. When the test failed, the server logs are logged
// before the cluster is stopped.
func StartPGForTest(t testing.TB, o PGOptions) *PGCluster {
	t.Helper()
	RequirePG(t)
	o.Fast = true
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := StartPG(ctx, o)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			for _, l := range se.Logs {
				t.Logf("--- tail of the %s server log ---\n%s", l.Node, l.Tail)
			}
		}
		t.Fatalf("start PostgreSQL cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.DumpLogs(t.Logf)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop PostgreSQL cluster: %v", err)
		}
	})
	return c
}
