package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// TestReadYourWrites: with both replicas applying WAL 3 s late (and no lag bound, so they stay
// readable), a read_your_writes session always sees its own last write: its waits on a replica
// time out, its reads go to the primary until a replica has replayed that write, then to
// replicas again. A session that has not written reads from a replica throughout.
func TestReadYourWrites(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	superTable(t, ctx, c, "ryw")
	for _, r := range c.Replicas {
		rc, err := pgx.Connect(ctx, r.SuperURL())
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"ALTER SYSTEM SET recovery_min_apply_delay = '3s'", "SELECT pg_reload_conf()"} {
			if _, err := rc.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		rc.Close(ctx)
	}
	b := batontest.StartPGBatonForTest(t, c, func(cl *topology.Cluster) {
		cl.Consistency = topology.ReadYourWrites
		cl.MaxLag, cl.MaxLagBytes = 0, 0
		cl.ReadYourWritesWait = topology.Duration(200 * time.Millisecond) // every wait times out
	})
	conn := func() *pgx.Conn {
		cc, err := pgx.Connect(ctx, b.URL(c))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close(context.Background()) })
		return cc
	}
	writer, reader := conn(), conn()
	// Wait until the table has reached the (delayed) replicas.
	waitFor(t, ctx, "the table on the replicas", func() bool {
		var ok bool
		err := reader.QueryRow(ctx, "SELECT to_regclass('ryw') IS NOT NULL AND pg_is_in_recovery()").Scan(&ok)
		return err == nil && ok
	})
	sawReplicaAgain := false
	for i := 1; i <= 8; i++ {
		if _, err := writer.Exec(ctx, "INSERT INTO ryw VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
		var n int
		var rep bool
		if err := writer.QueryRow(ctx, "SELECT count(*), pg_is_in_recovery() FROM ryw").Scan(&n, &rep); err != nil {
			t.Fatal(err)
		}
		if n != i {
			t.Fatalf("after writing row %d the writer read %d rows (on a replica: %v): not its own write", i, n, rep)
		}
		if rep {
			t.Fatalf("right after a write, with replicas 3 s behind, the read ran on a replica yet saw %d rows", n)
		}
		var r bool
		if err := reader.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&r); err != nil || !r {
			t.Fatalf("a session that never wrote read from the primary (%v)", err)
		}
	}
	// Once the replicas have replayed the last write, the writer reads from them again.
	waitFor(t, ctx, "the writer reads from a caught-up replica", func() bool {
		var n int
		var rep bool
		if err := writer.QueryRow(ctx, "SELECT count(*), pg_is_in_recovery() FROM ryw").Scan(&n, &rep); err != nil {
			return false
		}
		if n != 8 {
			t.Fatalf("the writer read %d rows; want 8", n)
		}
		sawReplicaAgain = rep
		return rep
	})
	if !sawReplicaAgain {
		t.Fatal("the writer never went back to a replica")
	}
}

// TestReadYourWritesWaitsOnReplica: on a healthy cluster, the read right after a write is served
// by a replica that baton has seen replay the write (the probes alone, every 500 ms, would send
// nearly all of them to the primary), and it always sees the write; with the wait switched off
// (read_your_writes_wait: 0) the same reads go to the primary. The writes alternate between
// autocommit and explicit transactions, so both ways of ending a write are covered.
func TestReadYourWritesWaitsOnReplica(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	su := superTable(t, ctx, c, "ryw_wait")
	const rounds = 60
	run := func(wait time.Duration) (onReplica int, waits, fallbacks int64) {
		b := batontest.StartPGBatonForTest(t, c, func(cl *topology.Cluster) {
			cl.Consistency = topology.ReadYourWrites
			cl.ReadYourWritesWait = topology.Duration(wait)
		})
		conn, err := pgx.Connect(ctx, b.URL(c))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		waitFor(t, ctx, "the table on the replicas through baton", func() bool {
			var ok bool
			err := conn.QueryRow(ctx, "SELECT to_regclass('ryw_wait') IS NOT NULL AND pg_is_in_recovery()").Scan(&ok)
			return err == nil && ok
		})
		var base int
		if err := su.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM ryw_wait").Scan(&base); err != nil {
			t.Fatal(err)
		}
		for i := base + 1; i <= base+rounds; i++ {
			if i%2 == 0 {
				if _, err := conn.Exec(ctx, "INSERT INTO ryw_wait VALUES ($1)", i); err != nil {
					t.Fatal(err)
				}
			} else {
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, "INSERT INTO ryw_wait VALUES ($1)", i); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var last int
			var rep bool
			if err := conn.QueryRow(ctx, "SELECT max(id), pg_is_in_recovery() FROM ryw_wait").Scan(&last, &rep); err != nil {
				t.Fatal(err)
			}
			if last != i {
				t.Fatalf("after writing row %d the session read max %d (on a replica: %v): not its own write", i, last, rep)
			}
			if rep {
				onReplica++
			}
		}
		m := b.Inst.Clusters()[0].PG.Metrics()
		return onReplica, m.RYWWaits(), m.RYWFallbacks()
	}
	onReplica, waits, fallbacks := run(time.Second)
	t.Logf("read_your_writes_wait 1s: %d of %d reads right after a write ran on a replica; %d waits, %d fallbacks", onReplica, rounds, waits, fallbacks)
	if onReplica < rounds*3/4 {
		t.Fatalf("only %d of %d reads right after a write ran on a replica; want most", onReplica, rounds)
	}
	if waits == 0 {
		t.Fatal("no read_your_writes wait was counted")
	}
	onReplica, waits, fallbacks = run(0)
	t.Logf("read_your_writes_wait 0: %d of %d reads right after a write ran on a replica; %d waits, %d fallbacks", onReplica, rounds, waits, fallbacks)
	if waits != 0 {
		t.Fatalf("%d waits with read_your_writes_wait 0", waits)
	}
	if onReplica > rounds/4 {
		t.Fatalf("%d of %d reads right after a write ran on a replica without a wait; the probes alone cannot know that often", onReplica, rounds)
	}
}

// superTable creates table name (id int PRIMARY KEY) on c's primary as the superuser, grants it
// to app, and returns the superuser connection (closed when the test ends).
func superTable(t *testing.T, ctx context.Context, c *cluster.PGCluster, name string) *pgx.Conn {
	t.Helper()
	su, err := pgx.Connect(ctx, c.Primary.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(context.Background()) })
	for _, q := range []string{"CREATE TABLE " + name + " (id int PRIMARY KEY)", "GRANT ALL ON " + name + " TO app"} {
		if _, err := su.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return su
}
