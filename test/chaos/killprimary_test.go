package chaos

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/test/etcdtest"
)

// timings collects the kill -9 → first acknowledged write times per engine; TestMain prints
// them.
var timings struct {
	mu sync.Mutex
	by map[string][]time.Duration
}

func recordTiming(engine string, d time.Duration) {
	timings.mu.Lock()
	defer timings.mu.Unlock()
	if timings.by == nil {
		timings.by = map[string][]time.Duration{}
	}
	timings.by[engine] = append(timings.by[engine], d)
}

// timingRows are the rows of the timing table, in order: the kill -9 rows keep the engines'
// names; the other scenarios add theirs.
var timingRows = []string{"postgres", "mariadb", "postgres hung", "mariadb hung", "postgres isolated", "mariadb isolated",
	"postgres switchover", "mariadb switchover"}

// printTimings prints the table of failover times (p50 and max per scenario).
func printTimings() {
	timings.mu.Lock()
	defer timings.mu.Unlock()
	if len(timings.by) == 0 {
		return
	}
	fmt.Println("fault → first acknowledged write sent after it (default failover settings):")
	fmt.Println("  postgres / mariadb: kill -9 of the primary; hung: SIGSTOP of the primary and its")
	fmt.Println("  processes; isolated: every link of the primary's network namespace dropping packets;")
	fmt.Println("  switchover: the write pause of `baton switchover` (longest gap between acknowledged writes)")
	fmt.Printf("%-18s %5s %10s %10s %10s\n", "scenario", "runs", "p50", "max", "min")
	for _, e := range timingRows {
		ds := slices.Clone(timings.by[e])
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		fmt.Printf("%-18s %5d %10v %10v %10v\n", e, len(ds), ds[(len(ds)-1)/2].Round(time.Millisecond),
			ds[len(ds)-1].Round(time.Millisecond), ds[0].Round(time.Millisecond))
	}
}

// chaosRuns is how many times the kill -9 tests fail over: $BATON_CHAOS_RUNS, default 1.
func chaosRuns(t *testing.T) int {
	v := os.Getenv("BATON_CHAOS_RUNS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("BATON_CHAOS_RUNS=%q: want a positive number", v)
	}
	return n
}

// TestChaosPGKillPrimary: scenario 1 on PostgreSQL (synchronous ANY 1), with baton's default
// failover settings; BATON_CHAOS_RUNS repeats it on fresh clusters for the timing table.
func TestChaosPGKillPrimary(t *testing.T) { testKillPrimary(t, "postgres", startPG) }

// TestChaosMyKillPrimary: scenario 1 on MariaDB (semi-synchronous).
func TestChaosMyKillPrimary(t *testing.T) { testKillPrimary(t, "mariadb", startMy) }

func testKillPrimary(t *testing.T, engine string, start func(*testing.T) *fixture) {
	etcd := etcdtest.StartForTest(t, 3)
	for r := range chaosRuns(t) {
		t.Run(fmt.Sprintf("run%d", r+1), func(t *testing.T) {
			d := killPrimaryOnce(t, start(t), etcd)
			recordTiming(engine, d)
		})
	}
}

// killPrimaryOnce kills -9 the primary under a write and read load through both instances and
// checks: exactly one new primary, the other replica follows it, writes resume through both
// instances, no two primaries were ever routed to, no acknowledged write is lost, the restarted
// old primary is fenced and gets no writes. It returns the time from the kill to the first
// acknowledged write sent after it.
func killPrimaryOnce(t *testing.T, fx *fixture, etcd *etcdtest.Cluster) time.Duration {
	e := newEnv(t, fx, envOptions{etcd: etcd}) // baton's default probe_interval, failure_threshold, grace
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(4, 2)
	st0 := e.mustStatus(e.b[0])
	old := fx.name(0)

	// The clock starts when the primary and all its processes are gone: until then a dying
	// PostgreSQL backend may still acknowledge a write sent after the SIGKILL.
	if err := fx.nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	resumed := l.ackedAfter(t, killed, anyInst, 60*time.Second)
	took := resumed.Sub(killed)
	for i := range e.b {
		l.ackedAfter(t, killed, i, 30*time.Second)
	}
	st := e.waitAll(30*time.Second, "one new primary published", func(s admin.ClusterStatus) bool {
		return s.Phase == "stable" && s.Epoch > st0.Epoch && s.Primary != "" && s.Primary != old
	})
	newP := fx.index(t, st.Primary)
	t.Logf("kill -9 of %s → first acknowledged write: %v; new primary %s, epoch %d → %d", old, took.Round(time.Millisecond), st.Primary, st0.Epoch, st.Epoch)
	checkOnePrimary(t, ctx, fx, newP, 0)

	// The old primary comes back: fenced, never routed to.
	if err := fx.nodes[0].Start(ctx); err != nil {
		t.Fatal(err)
	}
	checkFenced(t, ctx, e, 0, st.Primary, fx.engine == "pg")
	checkNoWrites(t, ctx, e, l, 0)

	l.stop()
	checkNoLoss(t, ctx, fx, l, newP)
	errs := l.failures(endedAfter(killed))
	for _, o := range errs {
		t.Logf("error after the kill: %v", o)
	}
	// Only statements in flight on the killed primary may fail: one per session at most.
	if len(errs) > 6 {
		t.Errorf("%d client errors after the kill; at most one per session (6) may fail", len(errs))
	}
	e.mon.check(t)
	return took
}

// checkOnePrimary checks that node newP takes writes and every other node except skip is a
// replica (the other replica is re-pointed at the new primary).
func checkOnePrimary(t *testing.T, ctx context.Context, fx *fixture, newP, skip int) {
	t.Helper()
	if ro, err := fx.readOnly(ctx, newP); err != nil || ro {
		t.Errorf("new primary %s: read-only %v, %v", fx.name(newP), ro, err)
	}
	for i := range fx.nodes {
		if i == newP || i == skip {
			continue
		}
		cluster.Eventually(t, 30*time.Second, fx.name(i)+" is a replica", func() (bool, error) {
			rec, err := fx.inRecovery(ctx, i)
			return rec, err
		})
		if ro, err := fx.readOnly(ctx, i); err != nil || !ro {
			t.Errorf("replica %s: read-only %v, %v", fx.name(i), ro, err)
		}
	}
}

// checkFenced waits until node i, which lost the primary role, refuses writes and no instance
// routes writes to it (PostgreSQL: both show it fenced).
func checkFenced(t *testing.T, ctx context.Context, e *env, i int, primary string, wantFencedFlag bool) {
	t.Helper()
	fx := e.fx
	cluster.Eventually(t, 30*time.Second, fx.name(i)+" is fenced (refuses writes)", func() (bool, error) {
		return fx.readOnly(ctx, i)
	})
	e.waitAll(30*time.Second, fx.name(i)+" is not routed to", func(s admin.ClusterStatus) bool {
		n, ok := node(s, fx.name(i))
		return ok && s.Phase == "stable" && s.Primary == primary && (n.Fenced || !wantFencedFlag && n.Role != "primary")
	})
}

// checkNoWrites checks that node i's row count stays the same while both instances acknowledge
// more writes.
func checkNoWrites(t *testing.T, ctx context.Context, e *env, l *load, i int) {
	t.Helper()
	// The fence terminates client connections, the test's own too: count with retries.
	count := func() int64 {
		var n int64
		cluster.Eventually(t, 10*time.Second, "rows on "+e.fx.name(i), func() (bool, error) {
			var err error
			n, err = e.fx.rows(ctx, i)
			return err == nil, err
		})
		return n
	}
	before := count()
	from := time.Now()
	for k := range e.b {
		if !e.b[k].exited() {
			l.ackedAfter(t, from, k, 20*time.Second)
			l.ackedAfter(t, time.Now(), k, 20*time.Second)
		}
	}
	if after := count(); after != before {
		t.Errorf("%s, not the primary, got writes: %d rows, then %d while the load went on", e.fx.name(i), before, after)
	}
	t.Logf("%s: %d rows before and after %d more acknowledged writes", e.fx.name(i), before, len(l.ackedSentIn(from, time.Now())))
}

// checkNoLoss checks that every acknowledged write is on node i (synchronous replication).
func checkNoLoss(t *testing.T, ctx context.Context, fx *fixture, l *load, i int) {
	t.Helper()
	acked := l.snapshotAcked()
	missing, err := fx.missing(ctx, i, acked)
	if err != nil {
		t.Fatalf("check acknowledged writes on %s: %v", fx.name(i), err)
	}
	w, r := l.counts()
	if missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on the primary %s", missing, w, fx.name(i))
		return
	}
	t.Logf("%d acknowledged writes (none lost), %d reads", w, r)
}
