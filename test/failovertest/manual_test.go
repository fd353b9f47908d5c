package failovertest

import (
	"context"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

func submit(t *testing.T, b *batontest.Baton, req topology.Request) topology.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := b.Inst.Store().Submit(ctx, b.Inst.Clusters()[0].Config.Name, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Kind, err)
	}
	return res
}

// TestMyManualFailoverAndRejoin: with failover.auto off a dead primary is not replaced until an
// operator asks (`baton failover`); a healthy primary is not failed over without --force; the
// old primary, back and fenced, is re-attached online as a replica (`baton rejoin`) and then
// receives the new primary's writes.
func TestMyManualFailoverAndRejoin(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	off := false
	b := batontest.StartMyBatonForTest(t, c, func(cl *topology.Cluster) { cl.Failover.Auto = &off })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool { return st.Epoch == 1 && st.Primary == "my1" })
	db := cluster.OpenMySQL(t, b.DSN(c, "timeout=5s"))
	if _, err := db.ExecContext(ctx, "CREATE TABLE m (x int)"); err != nil {
		t.Fatal(err)
	}

	if res := submit(t, b, topology.Request{Kind: "failover"}); res.OK {
		t.Fatalf("a failover of a healthy primary without force was carried out: %+v", res)
	}
	if err := c.Primary.Stop(); err != nil { // a clean stop: the old primary holds nothing extra
		t.Fatal(err)
	}
	// Automation is off: after the probes and more than the grace, the state still names my1.
	cluster.Eventually(t, 10*time.Second, "my1 seen down", func() (bool, error) {
		snap := b.Inst.Clusters()[0].Live.Load()
		return snap != nil && !snap.Nodes[0].Up, nil
	})
	downAt := time.Now()
	for time.Since(downAt) < 3*time.Second {
		if st, _ := b.Inst.Clusters()[0].State(); st.Epoch != 1 {
			t.Fatalf("failover.auto is off, yet the state changed: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}

	res := submit(t, b, topology.Request{Kind: "failover", To: "my3"})
	if !res.OK || res.Primary != "my3" || res.Epoch != 2 {
		t.Fatalf("manual failover: %+v", res)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO m VALUES (1)"); err != nil {
		t.Fatalf("write after the manual failover: %v", err)
	}

	if err := c.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	oldDB := cluster.OpenMySQL(t, c.Primary.RootDSN())
	cluster.Eventually(t, 20*time.Second, "the old primary is fenced", func() (bool, error) {
		ro, err := myQueryInt(ctx, oldDB, "SELECT @@read_only")
		return err == nil && ro == 1, err
	})
	if res := submit(t, b, topology.Request{Kind: "rejoin", Node: "my1"}); !res.OK {
		t.Fatalf("rejoin: %+v", res)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO m VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 20*time.Second, "the rejoined node has the new primary's rows", func() (bool, error) {
		n, err := myQueryInt(ctx, oldDB, "SELECT count(*) FROM m")
		return n == 2, err
	})
	cluster.Eventually(t, 20*time.Second, "baton reads from the rejoined node again", func() (bool, error) {
		snap := b.Inst.Clusters()[0].Live.Load()
		for _, i := range snap.Readable {
			if snap.Nodes[i].Name == "my1" {
				return true, nil
			}
		}
		return false, nil
	})
}
