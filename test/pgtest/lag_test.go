package pgtest

import (
	"context"
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
	"github.com/jackc/pgx/v5"
)

const lagMaxLag = 2 * time.Second

// TestLaggingReplicaLeavesReadSet delays replay on replica1 (recovery_min_apply_delay) while
// the primary takes a write every 50 ms: replica1 leaves the read set once its lag passes
// max_lag, every read through baton from then on runs on replica2 and sees every row the primary
// acknowledged more than max_lag (plus one probe interval) before the read began, and replica1
// rejoins by itself once the delay is lifted.
func TestLaggingReplicaLeavesReadSet(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	slow, fast := c.Replicas[0], c.Replicas[1]
	super := connectURL(t, c.Primary.SuperURL())
	// pg_monitor lets the probe read the WAL receiver's status and source.
	execOn(t, ctx, super, "GRANT pg_monitor TO "+c.Opts.AppUser)
	app := connectURL(t, c.Primary.AppURL())
	execOn(t, ctx, app, "CREATE TABLE lag_rows (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	execOn(t, ctx, app, "INSERT INTO lag_rows DEFAULT VALUES")

	b := batontest.StartPGBatonForTest(t, c, func(cl *topology.Cluster) { cl.MaxLag = topology.Duration(lagMaxLag) })
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
	var (
		mu    sync.Mutex
		acked = []time.Time{time.Now()} // the row inserted above
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
			if _, err := app.Exec(ctx, "INSERT INTO lag_rows DEFAULT VALUES"); err != nil {
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

	slowSuper := connectURL(t, slow.SuperURL())
	execOn(t, ctx, slowSuper, "ALTER SYSTEM SET recovery_min_apply_delay = '30s'")
	execOn(t, ctx, slowSuper, "SELECT pg_reload_conf()")
	delayed := time.Now()
	left := untilSnapshot(t, ctx, bc, "replica1 leaves the read set over max_lag", func(s *topology.Snapshot) bool {
		return !slices.Contains(s.Readable, s.Index(nodeByAddr(s, slow.Addr()).Name))
	})
	s := bc.Live.Load()
	n := nodeByAddr(s, slow.Addr())
	if n.Lag <= lagMaxLag || !strings.Contains(n.Unreadable, "max_lag") {
		t.Fatalf("replica1 left the read set with lag %v (%q); want lag > max_lag %v", n.Lag, n.Unreadable, lagMaxLag)
	}
	if f := nodeByAddr(s, fast.Addr()); !slices.Contains(s.Readable, s.Index(f.Name)) {
		t.Fatalf("replica2 is not readable: %q (lag %v)", f.Unreadable, f.Lag)
	}
	t.Logf("replica1 left the read set %v after the delay was set (lag %v, %d bytes: %s)",
		left.Sub(delayed).Round(time.Millisecond), n.Lag.Round(time.Millisecond), n.LagBytes, n.Unreadable)

	// Reads through baton for two seconds: all on replica2, none staler than the bound.
	conn := connectURL(t, b.URL(c))
	reads := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); reads++ {
		began := time.Now()
		var port int
		var rows int64
		if err := conn.QueryRow(ctx, "SELECT inet_server_port(), count(*) FROM lag_rows", pgx.QueryExecModeSimpleProtocol).Scan(&port, &rows); err != nil {
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

	execOn(t, ctx, slowSuper, "ALTER SYSTEM SET recovery_min_apply_delay = 0")
	execOn(t, ctx, slowSuper, "SELECT pg_reload_conf()")
	lifted := time.Now()
	back := untilSnapshot(t, ctx, bc, "replica1 rejoins the read set", func(s *topology.Snapshot) bool {
		return slices.Contains(s.Readable, s.Index(nodeByAddr(s, slow.Addr()).Name))
	})
	stopWriter()
	t.Logf("replica1 rejoined %v after the delay was lifted (%d reads checked on replica2)", back.Sub(lifted).Round(time.Millisecond), reads)
	// And it serves reads again (a session sticks to its replica: use new ones).
	for deadline := time.Now().Add(10 * time.Second); ; {
		c := connectURL(t, b.URL(c))
		port, _ := where(t, c, ctx, "")
		c.Close(ctx)
		if port == slow.Port {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no read reached replica1 after it rejoined")
		}
	}
}

// TestStoppedReceiverRerouteDelay stops replica2's WAL receiver (an empty primary_conninfo) and
// measures how long baton takes to drop it from the read set, with probe_interval 200ms and 1s,
// from the moment the replica itself reports no WAL receiver.
func TestStoppedReceiverRerouteDelay(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := c.Replicas[1]
	execOn(t, ctx, connectURL(t, c.Primary.SuperURL()), "GRANT pg_monitor TO "+c.Opts.AppUser)
	intervals := []time.Duration{200 * time.Millisecond, time.Second}
	var bcs []*proxy.Cluster
	for _, iv := range intervals {
		b := batontest.StartPGBatonForTest(t, c, func(cl *topology.Cluster) { cl.ProbeInterval = topology.Duration(iv) })
		bcs = append(bcs, b.Inst.Clusters()[0])
	}
	rs := connectURL(t, r.SuperURL())
	var conninfo string
	if err := rs.QueryRow(ctx, "SHOW primary_conninfo").Scan(&conninfo); err != nil {
		t.Fatal(err)
	}
	readable := func(s *topology.Snapshot) bool {
		return slices.Contains(s.Readable, s.Index(nodeByAddr(s, r.Addr()).Name))
	}
	const trials = 5
	delays := make([][]time.Duration, len(intervals))
	for trial := range trials {
		for _, bc := range bcs {
			untilSnapshot(t, ctx, bc, "replica2 readable", readable)
		}
		// Break at a random phase of the probe ticks, not right after a probe round.
		<-time.After(time.Duration(rand.Int64N(int64(time.Second))))
		execOn(t, ctx, rs, "ALTER SYSTEM SET primary_conninfo = ''")
		execOn(t, ctx, rs, "SELECT pg_reload_conf()")
		var broke time.Time
		for broke.IsZero() {
			var n int
			if err := rs.QueryRow(ctx, "SELECT count(*) FROM pg_stat_wal_receiver").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				broke = time.Now()
			}
		}
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
		if n := nodeByAddr(bcs[0].Live.Load(), r.Addr()); n.Unreadable != "not streaming" {
			t.Fatalf("trial %d: replica2 unreadable because %q; want not streaming", trial, n.Unreadable)
		}
		execOn(t, ctx, rs, "ALTER SYSTEM SET primary_conninfo = "+quoteLiteral(conninfo))
		execOn(t, ctx, rs, "SELECT pg_reload_conf()")
	}
	for i, iv := range intervals {
		t.Logf("probe_interval %v: replica2 left the read set after %v", iv, delays[i])
		for _, d := range delays[i] {
			if limit := iv + topology.DefaultProbeTimeout + time.Second; d > limit {
				t.Errorf("probe_interval %v: reroute took %v (> %v)", iv, d, limit)
			}
		}
	}
	for _, bc := range bcs {
		untilSnapshot(t, ctx, bc, "replica2 rejoins", readable)
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

func execOn(t *testing.T, ctx context.Context, c *pgx.Conn, q string) {
	t.Helper()
	if _, err := c.Exec(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
