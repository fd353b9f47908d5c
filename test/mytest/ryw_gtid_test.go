package mytest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// rywCluster starts a MariaDB cluster whose replicas baton may read from with a large max_lag,
// and baton in read_your_writes mode in front of it, with table ryw_rows (w, i) and both
// replicas readable. before runs on the cluster before baton starts; mod may adjust baton's
// configuration.
func rywCluster(t *testing.T, ctx context.Context, before func(c *cluster.MyCluster), mod func(*topology.Cluster)) (*cluster.MyCluster, *batontest.Baton, *proxy.Cluster) {
	t.Helper()
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	root := cluster.OpenMySQL(t, c.Primary.RootDSN())
	grantMonitor(t, ctx, root, c.Opts.AppUser)
	myExec(t, ctx, root, "CREATE TABLE "+c.Opts.AppDB+".ryw_rows (w INT NOT NULL, i INT NOT NULL, PRIMARY KEY (w, i))")
	if err := c.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(c)
	}
	b := batontest.StartMyBatonForTest(t, c, func(cl *topology.Cluster) {
		cl.Consistency = topology.ReadYourWrites
		cl.MaxLag = topology.Duration(time.Minute) // a delayed replica stays in the read set
		if mod != nil {
			mod(cl)
		}
	})
	bc := b.Inst.Clusters()[0]
	untilSnapshot(t, ctx, bc, "both replicas readable", func(s *topology.Snapshot) bool {
		for _, r := range c.Replicas {
			if !slices.Contains(s.Readable, s.Index(nodeByAddr(s, r.Addr()).Name)) {
				return false
			}
		}
		return true
	})
	return c, b, bc
}

// writeThenRead inserts row (w, i) on conn and reads back how many rows of w the session sees
// and the port of the node that answered.
func writeThenRead(ctx context.Context, conn *sql.Conn, w, i int) (n, port int, err error) {
	if _, err := conn.ExecContext(ctx, "INSERT INTO ryw_rows (w, i) VALUES (?, ?)", w, i); err != nil {
		return 0, 0, fmt.Errorf("insert (%d, %d): %w", w, i, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*), @@port FROM ryw_rows WHERE w = ?", w).Scan(&n, &port); err != nil {
		return 0, 0, fmt.Errorf("read after insert (%d, %d): %w", w, i, err)
	}
	return n, port, nil
}

// TestReadYourWritesDelayedReplica: replica1 applies events 5 s late (MASTER_DELAY) but stays
// readable (max_lag 1m). A session that writes then reads always sees its own row — never
// replica1's old data — and most of those reads are served by replica2 (the undelayed replica)
// rather than the primary; a session that never wrote still reads from the replicas, replica1
// included, whose staleness is checked directly.
func TestReadYourWritesDelayedReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var slow, fast *cluster.MyNode
	c, b, bc := rywCluster(t, ctx, func(c *cluster.MyCluster) {
		slow, fast = c.Replicas[0], c.Replicas[1]
		slowRoot := cluster.OpenMySQL(t, slow.RootDSN())
		for _, q := range []string{"STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 5", "START SLAVE"} {
			myExec(t, ctx, slowRoot, q)
		}
	}, nil)
	db := cluster.OpenMySQL(t, b.DSN(c, ""))
	w, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	const rounds = 60
	ports := map[int]int{}
	readers := map[int]int{}
	for i := 1; i <= rounds; i++ {
		n, port, err := writeThenRead(ctx, w, 1, i)
		if err != nil {
			t.Fatal(err)
		}
		if n != i {
			t.Fatalf("after writing row %d the session read %d rows on port %d (primary %d, delayed replica1 %d, replica2 %d)",
				i, n, port, c.Primary.Port, slow.Port, fast.Port)
		}
		ports[port]++
		p := where(t, r, ctx, "")
		if p != slow.Port && p != fast.Port {
			t.Fatalf("a read of a session that never wrote ran on port %d; want a replica (%d or %d)", p, slow.Port, fast.Port)
		}
		readers[p]++
	}
	// The delay is real: replica1 has not applied the rows yet, so a read there would be stale.
	var onSlow int
	if err := cluster.OpenMySQL(t, slow.AppDSN()).QueryRowContext(ctx, "SELECT COUNT(*) FROM ryw_rows").Scan(&onSlow); err != nil {
		t.Fatal(err)
	}
	if onSlow >= rounds {
		t.Fatalf("replica1 already has all %d rows: MASTER_DELAY did not take effect", onSlow)
	}
	m := bc.My.Metrics()
	t.Logf("reads after a write: primary %d, replica1 (delayed) %d, replica2 %d; reads of a session without writes: replica1 %d, replica2 %d; replica1 holds %d of %d rows; GTID waits %d, fallbacks %d",
		ports[c.Primary.Port], ports[slow.Port], ports[fast.Port], readers[slow.Port], readers[fast.Port], onSlow, rounds, m.GTIDWaits(), m.GTIDFallbacks())
	if ports[fast.Port] < rounds/2 {
		t.Fatalf("only %d of %d reads after a write ran on the undelayed replica2; want most", ports[fast.Port], rounds)
	}
	if m.GTIDWaits() == 0 {
		t.Fatal("no GTID wait was counted")
	}
}

// TestReadYourWritesStoppedReplica: four sessions write and read back their own rows in a loop
// while the replication of the replica that served most of those reads is stopped (STOP SLAVE)
// and later started again. No client sees an error, every read sees the row just written, and
// the replicas keep serving most reads. Probes are slow here (2 s), so waits on the stopped
// replica time out before the health checker notices: those commands go to the primary (a
// GTID fallback) and the session's next wait picks the other replica.
func TestReadYourWritesStoppedReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	// Probes every 2 s: the replica's GTID waits time out (1 s) before the health checker notices
	// that it stopped, so reads also take the wait-timeout path to the primary.
	c, b, bc := rywCluster(t, ctx, nil, func(cl *topology.Cluster) { cl.ProbeInterval = topology.Duration(2 * time.Second) })
	db := cluster.OpenMySQL(t, b.DSN(c, ""))

	const workers = 4
	var (
		reads, onReplica atomic.Int64
		mu               sync.Mutex
		byPort           = map[int]int{}
		progress         = make(chan struct{}, 1)
		stop             = make(chan struct{})
		wg               sync.WaitGroup
		errs             = make([]error, workers)
	)
	for wk := range workers {
		wg.Go(func() {
			conn, err := db.Conn(ctx)
			if err != nil {
				errs[wk] = err
				return
			}
			defer conn.Close()
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n, port, err := writeThenRead(ctx, conn, wk, i)
				if err != nil {
					errs[wk] = err
					return
				}
				if n != i {
					errs[wk] = fmt.Errorf("session %d: after writing row %d it read %d rows on port %d", wk, i, n, port)
					return
				}
				if port != c.Primary.Port {
					onReplica.Add(1)
				}
				mu.Lock()
				byPort[port]++
				mu.Unlock()
				reads.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	stopWorkers := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkers()
	// awaitReads waits until the workers have done n more reads, or one of them failed.
	awaitReads := func(n int64, what string) {
		t.Helper()
		target := reads.Load() + n
		for reads.Load() < target {
			select {
			case <-progress:
			case <-time.After(10 * time.Second):
				stopWorkers()
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				t.Fatalf("%s: no progress in 10 s (%d reads)", what, reads.Load())
			case <-ctx.Done():
				t.Fatalf("%s: %v", what, ctx.Err())
			}
		}
	}
	awaitReads(200, "load before STOP SLAVE")
	stopped := c.Replicas[0]
	mu.Lock()
	if byPort[c.Replicas[1].Port] > byPort[stopped.Port] {
		stopped = c.Replicas[1]
	}
	t.Logf("reads so far by port: %v; stopping %s (port %d)", byPort, stopped.Name, stopped.Port)
	mu.Unlock()
	stRoot := cluster.OpenMySQL(t, stopped.RootDSN())
	myExec(t, ctx, stRoot, "STOP SLAVE")
	untilSnapshot(t, ctx, bc, "the stopped replica leaves the read set", func(s *topology.Snapshot) bool {
		return !slices.Contains(s.Readable, s.Index(nodeByAddr(s, stopped.Addr()).Name))
	})
	mu.Lock()
	before := byPort[stopped.Port]
	mu.Unlock()
	awaitReads(200, "load while the replica is stopped")
	mu.Lock()
	if after := byPort[stopped.Port]; after != before {
		t.Errorf("%d reads ran on %s after it left the read set", after-before, stopped.Name)
	}
	mu.Unlock()
	myExec(t, ctx, stRoot, "START SLAVE")
	untilSnapshot(t, ctx, bc, "the stopped replica rejoins the read set", func(s *topology.Snapshot) bool {
		return slices.Contains(s.Readable, s.Index(nodeByAddr(s, stopped.Addr()).Name))
	})
	awaitReads(200, "load after START SLAVE")
	stopWorkers()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	m := bc.My.Metrics()
	t.Logf("%d reads after writes, %d on a replica (by port %v); GTID waits %d, fallbacks %d", reads.Load(), onReplica.Load(), byPort, m.GTIDWaits(), m.GTIDFallbacks())
	if onReplica.Load() < reads.Load()/2 {
		t.Fatalf("only %d of %d reads ran on a replica", onReplica.Load(), reads.Load())
	}
	if m.GTIDFallbacks() == 0 {
		t.Fatal("no GTID wait on the stopped replica timed out: the test did not exercise the fallback")
	}
}
