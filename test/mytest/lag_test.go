package mytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

const lagMaxLag = 2 * time.Second

// TestLaggingReplicaLeavesReadSet delays replica1 (MASTER_DELAY=30) while the primary takes a
// write every 50 ms: replica1 leaves the read set once Seconds_Behind_Master passes max_lag,
// every read through baton from then on runs on replica2 and sees every row the primary
// acknowledged more than max_lag (plus a second) before the read began, and replica1 rejoins by
// itself once the delay is removed.
func TestLaggingReplicaLeavesReadSet(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	slow, fast := c.Replicas[0], c.Replicas[1]
	root := cluster.OpenMySQL(t, c.Primary.RootDSN())
	grantMonitor(t, ctx, root, c.Opts.AppUser)
	myExec(t, ctx, root, "CREATE TABLE lag_rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")
	if err := c.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}

	b := batontest.StartMyBatonForTest(t, c, func(cl *topology.Cluster) { cl.MaxLag = topology.Duration(lagMaxLag) })
	bc := b.Inst.Clusters()[0]
	untilSnapshot(t, ctx, bc, "both replicas readable, streaming from the primary", func(s *topology.Snapshot) bool {
		for _, r := range c.Replicas {
			n := nodeByAddr(s, r.Addr())
			if !slices.Contains(s.Readable, s.Index(n.Name)) || !n.Streaming || n.Following != c.Primary.Addr() {
				return false
			}
		}
		return true
	})

	// The writer: one row every 50 ms; acked[i] is when row i+1 was acknowledged.
	app := cluster.OpenMySQL(t, c.Primary.AppDSN())
	var (
		mu    sync.Mutex
		acked []time.Time
		stop  = make(chan struct{})
		once  sync.Once
		wg    sync.WaitGroup
		wErr  atomic.Value
	)
	wg.Go(func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if _, err := app.ExecContext(ctx, "INSERT INTO lag_rows () VALUES ()"); err != nil {
				wErr.Store(err)
				return
			}
			mu.Lock()
			acked = append(acked, time.Now())
			mu.Unlock()
		}
	})
	stopWriter := func() {
		t.Helper()
		once.Do(func() { close(stop); wg.Wait() })
		if err, _ := wErr.Load().(error); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	defer stopWriter()

	slowRoot := cluster.OpenMySQL(t, slow.RootDSN())
	for _, q := range []string{"STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 30", "START SLAVE"} {
		myExec(t, ctx, slowRoot, q)
	}
	delayed := time.Now()
	// STOP SLAVE takes it out as "not streaming" at once; wait for it to be out for its lag.
	left := untilSnapshot(t, ctx, bc, "replica1 out of the read set over max_lag", func(s *topology.Snapshot) bool {
		n := nodeByAddr(s, slow.Addr())
		return n.Streaming && strings.Contains(n.Unreadable, "max_lag")
	})
	s := bc.Live.Load()
	n := nodeByAddr(s, slow.Addr())
	if n.Lag <= lagMaxLag || slices.Contains(s.Readable, s.Index(n.Name)) {
		t.Fatalf("replica1: lag %v (%q), readable %v; want lag > max_lag %v", n.Lag, n.Unreadable, s.Readable, lagMaxLag)
	}
	if f := nodeByAddr(s, fast.Addr()); !slices.Contains(s.Readable, s.Index(f.Name)) {
		t.Fatalf("replica2 is not readable: %q (lag %v)", f.Unreadable, f.Lag)
	}
	t.Logf("replica1 out over max_lag %v after MASTER_DELAY was set (lag %v: %s)",
		left.Sub(delayed).Round(time.Millisecond), n.Lag, n.Unreadable)

	// Reads through baton for two seconds: all on replica2, none staler than the bound.
	db := cluster.OpenMySQL(t, b.DSN(c, ""))
	reads := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); reads++ {
		began := time.Now()
		var port int
		var rows int64
		if err := db.QueryRowContext(ctx, "SELECT @@port, COUNT(*) FROM lag_rows").Scan(&port, &rows); err != nil {
			t.Fatal(err)
		}
		if port != fast.Port {
			t.Fatalf("read %d ran on port %d; want replica2 (%d); replica1 is %d", reads, port, fast.Port, slow.Port)
		}
		mu.Lock()
		old := sort.Search(len(acked), func(i int) bool { return acked[i].After(began.Add(-lagMaxLag - time.Second)) })
		mu.Unlock()
		if rows < int64(old) {
			t.Fatalf("read %d saw %d rows; %d were acknowledged more than %v before it began", reads, rows, old, lagMaxLag+time.Second)
		}
	}
	if s := bc.Live.Load(); nodeByAddr(s, slow.Addr()).Lag <= lagMaxLag {
		t.Fatalf("replica1's lag is %v after 2s more of writes", nodeByAddr(s, slow.Addr()).Lag)
	}

	for _, q := range []string{"STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE"} {
		myExec(t, ctx, slowRoot, q)
	}
	lifted := time.Now()
	back := untilSnapshot(t, ctx, bc, "replica1 rejoins the read set", func(s *topology.Snapshot) bool {
		return slices.Contains(s.Readable, s.Index(nodeByAddr(s, slow.Addr()).Name))
	})
	stopWriter()
	t.Logf("replica1 rejoined %v after MASTER_DELAY was removed (%d reads checked on replica2)", back.Sub(lifted).Round(time.Millisecond), reads)
}

// TestStoppedReplicaRerouteDelay runs STOP SLAVE on replica2 at a random moment and measures
// how long baton takes to drop it from the read set (not streaming), with probe_interval 200ms
// and 1s, and with 200ms for a monitor user without SLAVE MONITOR (Slave_running fallback);
// after START SLAVE it rejoins.
func TestStoppedReplicaRerouteDelay(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := c.Replicas[1]
	root := cluster.OpenMySQL(t, c.Primary.RootDSN())
	grantMonitor(t, ctx, root, c.Opts.AppUser)
	for _, h := range []string{"%", "127.0.0.1", "localhost"} {
		myExec(t, ctx, root, fmt.Sprintf("CREATE USER 'mon'@'%s' IDENTIFIED BY 'mon'", h))
		myExec(t, ctx, root, fmt.Sprintf("GRANT SELECT ON %s.* TO 'mon'@'%s'", c.Opts.AppDB, h))
	}
	if err := c.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	setups := []struct {
		name string
		mod  func(*topology.Cluster)
	}{
		{"probe_interval 200ms", func(cl *topology.Cluster) {}},
		{"probe_interval 1s", func(cl *topology.Cluster) { cl.ProbeInterval = topology.Duration(time.Second) }},
		{"probe_interval 200ms, monitor without SLAVE MONITOR", func(cl *topology.Cluster) {
			cl.Users = append(cl.Users, &topology.User{Name: "mon", Password: "mon", Auth: "mysql_native_password", BackendUser: "mon", BackendPassword: "mon"})
			cl.MonitorUser = "mon"
		}},
	}
	var bcs []*proxy.Cluster
	for _, su := range setups {
		bcs = append(bcs, batontest.StartMyBatonForTest(t, c, su.mod).Inst.Clusters()[0])
	}
	rroot := cluster.OpenMySQL(t, r.RootDSN())
	readable := func(s *topology.Snapshot) bool {
		return slices.Contains(s.Readable, s.Index(nodeByAddr(s, r.Addr()).Name))
	}
	const trials = 8
	delays := make([][]time.Duration, len(bcs))
	for trial := range trials {
		for _, bc := range bcs {
			untilSnapshot(t, ctx, bc, "replica2 readable", readable)
		}
		// Break at a random phase of the probe ticks, not right after a probe round.
		<-time.After(time.Duration(rand.Int64N(int64(time.Second))))
		myExec(t, ctx, rroot, "STOP SLAVE")
		broke := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, len(bcs))
		for i, bc := range bcs {
			wg.Go(func() {
				gone, err := awaitSnapshot(ctx, bc, "replica2 leaves the read set", func(s *topology.Snapshot) bool { return !readable(s) })
				delays[i], errs[i] = append(delays[i], max(0, gone.Sub(broke))), err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for i, bc := range bcs {
			if n := nodeByAddr(bc.Live.Load(), r.Addr()); n.Unreadable != "not streaming" {
				t.Fatalf("trial %d, %s: replica2 unreadable because %q; want not streaming", trial, setups[i].name, n.Unreadable)
			}
		}
		myExec(t, ctx, rroot, "START SLAVE")
	}
	for _, bc := range bcs {
		untilSnapshot(t, ctx, bc, "replica2 rejoins", readable)
	}
	for i, su := range setups {
		var sum time.Duration
		for _, d := range delays[i] {
			sum += d
		}
		t.Logf("%s: replica2 left the read set after %v (mean %v)", su.name, delays[i], (sum / time.Duration(len(delays[i]))).Round(time.Millisecond))
		for _, d := range delays[i] {
			if limit := bcs[i].Config.ProbeInterval.D() + topology.DefaultProbeTimeout + time.Second; d > limit {
				t.Errorf("%s: reroute took %v (> %v)", su.name, d, limit)
			}
		}
	}
}

// grantMonitor lets user (all its hosts, as the harness creates them) read SHOW SLAVE STATUS.
func grantMonitor(t *testing.T, ctx context.Context, root *sql.DB, user string) {
	t.Helper()
	for _, h := range []string{"%", "127.0.0.1", "localhost"} {
		myExec(t, ctx, root, fmt.Sprintf("GRANT SLAVE MONITOR ON *.* TO '%s'@'%s'", user, h))
	}
}

// untilSnapshot waits for a published snapshot of bc that satisfies cond and returns the time
// it saw it. It wakes at each snapshot the checker publishes.
func untilSnapshot(t *testing.T, ctx context.Context, bc *proxy.Cluster, what string, cond func(*topology.Snapshot) bool) time.Time {
	t.Helper()
	at, err := awaitSnapshot(ctx, bc, what, cond)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// awaitSnapshot is untilSnapshot for goroutines other than the test's.
func awaitSnapshot(ctx context.Context, bc *proxy.Cluster, what string, cond func(*topology.Snapshot) bool) (time.Time, error) {
	for {
		changed := bc.Checker.Changed()
		if s := bc.Live.Load(); s != nil && cond(s) {
			return time.Now(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("timed out waiting for %s; last snapshot: %+v", what, bc.Live.Load())
		}
	}
}

func nodeByAddr(s *topology.Snapshot, addr string) *topology.NodeState {
	for i := range s.Nodes {
		if s.Nodes[i].Address == addr {
			return &s.Nodes[i]
		}
	}
	panic("BUG: no node " + addr + " in the snapshot")
}

func myExec(t *testing.T, ctx context.Context, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
