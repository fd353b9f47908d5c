package mytest

import (
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// primary_read_weight: with 1 beside two weight-1 replicas, about a third of the sessions read
// from the primary and keep reading there; with 0 none does.
func TestPrimaryReadWeight(t *testing.T) {
	const sessions = 30 // P(no session on the primary at weight 1) = (2/3)^30 ≈ 5e-6
	for _, weight := range []int{0, 1} {
		t.Run(fmt.Sprintf("weight-%d", weight), func(t *testing.T) {
			ctx := ctxT(t)
			b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
				cl.Consistency = topology.Eventual
				cl.PrimaryReadWeight = weight
			})
			cl := b.Inst.Clusters()[0]
			cluster.Eventually(t, 20*time.Second, "both replicas readable", func() (bool, error) {
				s := cl.Live.Load()
				return s != nil && len(s.Readable) == 2, nil
			})
			db := cluster.OpenMySQL(t, b.DSN(my, ""))
			db.SetMaxIdleConns(0) // a closed sql.Conn ends its baton session
			onPrimary, onReplica := 0, map[int]int{}
			stuck := false
			for range sessions {
				c, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				port := where(t, c, ctx, "")
				if port == my.Primary.Port {
					onPrimary++
					if !stuck {
						// The session stays on the primary, as one that drew a replica stays there.
						stuck = true
						for i := range 10 {
							if p := where(t, c, ctx, ""); p != port {
								t.Fatalf("read %d of a session placed on the primary ran on port %d", i+2, p)
							}
						}
					}
				} else {
					wantReplica(t, "a read", port)
					onReplica[port]++
				}
				c.Close()
			}
			t.Logf("primary_read_weight %d: %d of %d sessions read on the primary, replicas %v", weight, onPrimary, sessions, onReplica)
			if weight == 0 && onPrimary != 0 {
				t.Fatalf("%d of %d sessions read on the primary with primary_read_weight 0", onPrimary, sessions)
			}
			if weight > 0 && (onPrimary == 0 || len(onReplica) != 2) {
				t.Fatalf("primary_read_weight %d: primary %d, replicas %v of %d sessions; want reads on all three nodes", weight, onPrimary, onReplica, sessions)
			}
		})
	}
}

// read_your_writes with primary_read_weight: the primary always has the session's writes, so a
// read right after a write goes there (or to a replica known to have it) without a GTID wait.
func TestPrimaryReadWeightReadYourWrites(t *testing.T) {
	ctx := ctxT(t)
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		cl.Consistency = topology.ReadYourWrites
		cl.PrimaryReadWeight = 1
	})
	cl := b.Inst.Clusters()[0]
	db := cluster.OpenMySQL(t, b.DSN(my, ""))
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS prw_ryw (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t)
	cluster.Eventually(t, 20*time.Second, "both replicas readable", func() (bool, error) {
		s := cl.Live.Load()
		return s != nil && len(s.Readable) == 2, nil
	})
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := cl.My.Metrics()
	w0 := m.GTIDWaits()
	for i := range 20 {
		if _, err := c.ExecContext(ctx, "REPLACE INTO prw_ryw VALUES (1, ?)", i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := c.QueryRowContext(ctx, "SELECT v FROM prw_ryw WHERE id = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != i {
			t.Fatalf("read after write %d saw %d", i, v)
		}
	}
	if w := m.GTIDWaits() - w0; w != 0 {
		t.Fatalf("read_your_writes waited %d times for a replica; the primary is a read candidate with the session's writes", w)
	}
}
