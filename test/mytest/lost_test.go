package mytest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// batonViaCutters starts baton for one test with every node behind a cutter; it returns baton
// and the cutter of the primary.
func batonViaCutters(t *testing.T) (*batontest.Baton, *cutter) {
	t.Helper()
	cut := map[string]*cutter{}
	for _, n := range my.Nodes() {
		cut[n.Addr()] = newCutter(t, n.Addr())
	}
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		for _, n := range cl.Nodes {
			n.Address = cut[n.Address].addr()
		}
	})
	untilSnapshot(t, ctxT(t), b.Inst.Clusters()[0], "baton knows the primary", func(s *topology.Snapshot) bool {
		return s.PrimaryNode() != nil
	})
	return b, cut[my.Primary.Addr()]
}

// awaitRunning waits until the primary runs a statement whose text is q.
func awaitRunning(t *testing.T, root *sql.DB, q string) {
	t.Helper()
	cluster.Eventually(t, 20*time.Second, "the primary runs "+q, func() (bool, error) {
		var n int
		err := root.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = ?", q).Scan(&n)
		return n > 0, err
	})
}

// TestLostConnectionErrorCLI (issue 9, item 5): when the node running a statement goes away,
// the mariadb CLI shows baton's error with its text — a server-range code (1927, SQLSTATE
// 08S01), not a client-range code the CLI reports as "2027 Received malformed packet". A
// direct connection cut the same way shows the CLI's own "2013 Lost connection".
func TestLostConnectionErrorCLI(t *testing.T) {
	b, primaryCut := batonViaCutters(t)
	direct := newCutter(t, my.Primary.Addr())
	root := cluster.OpenMySQL(t, my.Primary.RootDSN())

	run := func(addr, q string, c *cutter) (string, int) {
		wait := cliAt(t, addr, q)
		awaitRunning(t, root, q)
		c.cut()
		out, errOut, code := wait()
		if code == 0 {
			t.Fatalf("%s survived losing its connection (stdout %q)", q, out)
		}
		if strings.Contains(errOut, "2027") || strings.Contains(errOut, "malformed") {
			t.Fatalf("%s: stderr %q: the client could not read the error", q, errOut)
		}
		return errOut, code
	}
	viaDirect, _ := run(direct.addr(), "DO SLEEP(21)", direct)
	if !strings.Contains(viaDirect, "ERROR 2013") {
		t.Fatalf("direct: stderr %q; want the client's ERROR 2013", viaDirect)
	}
	viaBaton, _ := run(b.Inst.Clusters()[0].Addr().String(), "DO SLEEP(20)", primaryCut)
	if !strings.Contains(viaBaton, "ERROR 1927 (08S01)") || !strings.Contains(viaBaton, "lost the connection to node") {
		t.Fatalf("through baton: stderr %q; want ERROR 1927 (08S01) with baton's text", viaBaton)
	}
	t.Logf("direct: %s; through baton: %s", strings.TrimSpace(viaDirect), strings.TrimSpace(viaBaton))
}
