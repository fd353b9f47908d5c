package pgtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// primary_read_weight: with 1 beside two weight-1 replicas, about a third of the sessions read
// from the primary (pg_is_in_recovery() false) and keep reading there; with 0 none does. Each
// read counts as a primary route in the metrics.
func TestPrimaryReadWeight(t *testing.T) {
	const sessions = 30 // P(no session on the primary at weight 1) = (2/3)^30 ≈ 5e-6
	for _, weight := range []int{0, 1} {
		t.Run(fmt.Sprintf("weight-%d", weight), func(t *testing.T) {
			ctx := ctxT(t)
			b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
				cl.Consistency = topology.Eventual
				cl.PrimaryReadWeight = weight
			})
			cl := b.Inst.Clusters()[0]
			waitFor(t, ctx, "both replicas readable", func() bool { s := cl.Live.Load(); return s != nil && len(s.Readable) == 2 })
			m := cl.PG.Metrics()
			p0, r0 := m.ToPrimary.Load(), m.ToReplica.Load()
			onPrimary, onReplica := 0, map[int]int{}
			var stuck *pgx.Conn // a session whose first read ran on the primary
			for range sessions {
				c := connectURL(t, b.URL(pg)+"&default_query_exec_mode=simple_protocol") // one unit per read
				port, replica := where(t, c, ctx, "")
				switch {
				case !replica && port == pg.Primary.Port:
					onPrimary++
					if stuck == nil {
						stuck = c
						continue
					}
				case replica && isReplicaPort(port):
					onReplica[port]++
				default:
					t.Fatalf("read ran on port %d (in recovery %v)", port, replica)
				}
				c.Close(ctx)
			}
			t.Logf("primary_read_weight %d: %d of %d sessions read on the primary, replicas %v", weight, onPrimary, sessions, onReplica)
			if weight == 0 && onPrimary != 0 {
				t.Fatalf("%d of %d sessions read on the primary with primary_read_weight 0", onPrimary, sessions)
			}
			if weight > 0 && (onPrimary == 0 || len(onReplica) != 2) {
				t.Fatalf("primary_read_weight %d: primary %d, replicas %v of %d sessions; want reads on all three nodes", weight, onPrimary, onReplica, sessions)
			}
			reads := int64(sessions)
			if stuck != nil {
				// The session stays on the primary, as one that drew a replica stays there.
				for i := range 10 {
					if port, replica := where(t, stuck, ctx, ""); replica || port != pg.Primary.Port {
						t.Fatalf("read %d of a session placed on the primary ran on port %d (in recovery %v)", i+2, port, replica)
					}
				}
				reads += 10
				stuck.Close(ctx)
			}
			dp, dr := m.ToPrimary.Load()-p0, m.ToReplica.Load()-r0
			if dp+dr != reads || dr != int64(sessions-onPrimary) {
				t.Fatalf("metrics: %d primary + %d replica routes; want %d reads, %d of them on replicas", dp, dr, reads, sessions-onPrimary)
			}
		})
	}
}

// read_your_writes with primary_read_weight: the primary always has the session's writes, so a
// read right after a write goes there (or to a replica known to have it) without waiting.
func TestPrimaryReadWeightReadYourWrites(t *testing.T) {
	ctx := ctxT(t)
	setup(t, "CREATE TABLE IF NOT EXISTS prw_ryw (id int PRIMARY KEY, v int)")
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.Consistency = topology.ReadYourWrites
		cl.PrimaryReadWeight = 1
	})
	cl := b.Inst.Clusters()[0]
	waitFor(t, ctx, "both replicas readable", func() bool { s := cl.Live.Load(); return s != nil && len(s.Readable) == 2 })
	c := connectURL(t, b.URL(pg))
	m := cl.PG.Metrics()
	for i := range 20 {
		if _, err := c.Exec(ctx, "INSERT INTO prw_ryw VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET v = excluded.v", i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := c.QueryRow(context.Background(), "SELECT v FROM prw_ryw WHERE id = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != i {
			t.Fatalf("read after write %d saw %d", i, v)
		}
	}
	if w, f := m.RYWWaits(), m.RYWFallbacks(); w != 0 || f != 0 {
		t.Fatalf("read_your_writes waited %d times (%d fallbacks); the primary is a read candidate with the session's writes", w, f)
	}
}
