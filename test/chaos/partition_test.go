package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/test/etcdtest"
	"github.com/jackc/pgx/v5"
)

// Real network partitions (DESIGN §5): the PostgreSQL nodes and the etcd members run in network
// namespaces of their own (cluster.NetLab), each joined to the host by three lanes: lane 0
// carries replication and the tests' own connections, baton instance b0 reaches every node and
// etcd on lane 1, b1 on lane 2. A cut drops packets (no reset, no ICMP error), so baton sees
// only timeouts: the weak evidence. The baton instances themselves run on the host.

// Lanes of the partition tests.
const (
	laneRepl = 0 // replication, the tests' administration
	laneB0   = 1 // baton instance b0
	laneB1   = 2 // baton instance b1
)

// netEnv is an env whose database nodes and etcd run in namespaces.
type netEnv struct {
	*env
	lab    *cluster.NetLab
	etcdNS *cluster.Netns
}

// newNetEnv starts a lab, etcd in a namespace, a PostgreSQL cluster with a namespace per node
// and two baton instances, each on its own lane, with baton's default failover settings.
func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	cluster.RequireNetns(t)
	lab, err := cluster.NewNetLab(3, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close) // registered first: runs after everything in the lab has stopped
	etcdNS, err := lab.Add("etcd")
	if err != nil {
		t.Fatal(err)
	}
	etcd := etcdtest.StartForTestWith(t, 3, etcdtest.Options{Netns: etcdNS})
	fx := startPGWith(t, lab)
	e := newEnv(t, fx, envOptions{etcd: etcd, instance: func(i int, s *spec) {
		lane := []int{laneB0, laneB1}[i]
		for k := range s.nodes {
			s.nodes[k] = fx.lanes[k](lane)
		}
		s.endpoints = etcd.LaneEndpoints(lane)
	}})
	return &netEnv{env: e, lab: lab, etcdNS: etcdNS}
}

// TestChaosPGPartitionPrimary: the primary's namespace is cut from everyone (every lane drops
// packets). Both instances see only timeouts; baton fails over within the weak-evidence bound,
// no acknowledged write is lost (synchronous replication), never two primaries are routed to,
// and when the links come back the old primary is fenced and gets no writes. BATON_CHAOS_RUNS
// repeats it for the timing table ("postgres isolated").
func TestChaosPGPartitionPrimary(t *testing.T) {
	cluster.RequireNetns(t)
	for r := range chaosRuns(t) {
		t.Run(fmt.Sprintf("run%d", r+1), func(t *testing.T) {
			ne := newNetEnv(t)
			e, fx := ne.env, ne.fx
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			l := e.startLoad(4, 2)
			st0 := e.mustStatus(e.b[0])
			old := fx.name(0)
			if err := fx.ns[0].Cut(); err != nil {
				t.Fatal(err)
			}
			cut := time.Now()
			healed := false
			defer func() {
				if !healed {
					fx.ns[0].Heal()
				}
			}()
			resumed := l.ackedAfter(t, cut, anyInst, 60*time.Second)
			took := resumed.Sub(cut)
			for i := range e.b {
				l.ackedAfter(t, cut, i, 30*time.Second)
			}
			st := e.waitAll(30*time.Second, "one new primary published", func(s admin.ClusterStatus) bool {
				return s.Phase == "stable" && s.Epoch > st0.Epoch && s.Primary != "" && s.Primary != old
			})
			t.Logf("primary %s isolated → first acknowledged write: %v; new primary %s, epoch %d → %d", old, took.Round(time.Millisecond), st.Primary, st0.Epoch, st.Epoch)
			recordTiming("postgres isolated", took)
			newP := fx.index(t, st.Primary)
			checkOnePrimary(t, ctx, fx, newP, 0)
			healed = true
			if err := fx.ns[0].Heal(); err != nil {
				t.Fatal(err)
			}
			checkFenced(t, ctx, e, 0, st.Primary, true)
			// Commits that were waiting for a synchronous standby when the links went down
			// become visible on the old primary when the fence terminates their backends (never
			// acknowledged: their clients' connections were cut at failing_over). Count from
			// when none is left.
			waitNoSyncRepWaiters(t, ctx, fx.nodes[0].(*cluster.PGNode))
			checkNoWrites(t, ctx, e, l, 0)
			l.stop()
			checkNoLoss(t, ctx, fx, l, newP)
			e.mon.check(t)
		})
	}
}

// TestChaosPGPartitionReplica: a replica's namespace is cut from everyone. No failover; writes
// go on (the other replica is synchronous); the replica leaves the read set and returns when the
// links come back.
func TestChaosPGPartitionReplica(t *testing.T) {
	ne := newNetEnv(t)
	e, fx := ne.env, ne.fx
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(2, 4)
	st0 := e.mustStatus(e.b[0])
	if err := fx.ns[2].Cut(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	e.waitAll(20*time.Second, "the cut replica leaves the read set", func(s admin.ClusterStatus) bool {
		n, _ := node(s, fx.name(2))
		return s.Phase == "stable" && s.Primary == fx.name(0) && !n.Readable
	})
	after := time.Now()
	for i := range e.b {
		l.ackedAfter(t, after, i, 20*time.Second)
		l.readAfter(t, after, i, 20*time.Second)
	}
	if err := fx.ns[2].Heal(); err != nil {
		t.Fatal(err)
	}
	e.waitAll(30*time.Second, "the replica back in the read set", func(s admin.ClusterStatus) bool {
		n, _ := node(s, fx.name(2))
		return s.Phase == "stable" && s.Primary == fx.name(0) && n.Readable
	})
	l.stop()
	if st := e.mustStatus(e.b[0]); st.Epoch != st0.Epoch {
		t.Errorf("a failover happened when a replica was cut off: epoch %d → %d", st0.Epoch, st.Epoch)
	}
	// A read or write in flight on the replica when its packets started to drop may fail; no
	// more than one per reader.
	if errs := l.failures(endedAfter(cut)); len(errs) > 4 {
		for _, o := range errs {
			t.Logf("error: %v", o)
		}
		t.Errorf("%d client errors after the replica was cut off", len(errs))
	}
	checkNoLoss(t, ctx, fx, l, 0)
	e.mon.check(t)
}

// TestChaosPGPartitionAsymmetric: the primary stays reachable by b0 but not by b1. b0 still
// observes it, so there is no failover (DESIGN §3: a failover needs every live instance to have
// lost the primary) and writes through b0 go on; b1's writes wait in its buffer and fail after
// its window. When the link comes back, b1 writes again.
func TestChaosPGPartitionAsymmetric(t *testing.T) {
	ne := newNetEnv(t)
	e, fx := ne.env, ne.fx
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(4, 2)
	st0 := e.mustStatus(e.b[0])
	if err := fx.ns[0].Cut(laneB1); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	// Longer than b1 needs to withdraw its observation (failure_threshold × probe_timeout) plus
	// grace plus a failover.
	hold := 6 * time.Second
	for time.Since(cut) < hold {
		for _, b := range e.b {
			if st, err := b.status(); err == nil && st.Epoch != st0.Epoch {
				t.Fatalf("failover while b0 still reaches the primary: %s: epoch %d → %d, primary %s", b.name, st0.Epoch, st.Epoch, st.Primary)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st := e.mustStatus(e.b[1]); st.Primary != "" {
		t.Logf("b1 still names primary %s (its probe keeps failing; writes wait in its buffer)", st.Primary)
	}
	l.ackedAfter(t, cut.Add(hold/2), 0, 10*time.Second)
	if err := fx.ns[0].Heal(laneB1); err != nil {
		t.Fatal(err)
	}
	l.ackedAfter(t, time.Now(), 1, 30*time.Second)
	l.stop()
	if st := e.mustStatus(e.b[0]); st.Epoch != st0.Epoch || st.Primary != fx.name(0) {
		t.Errorf("after the asymmetric cut: epoch %d → %d, primary %s", st0.Epoch, st.Epoch, st.Primary)
	}
	checkNoLoss(t, ctx, fx, l, 0)
	e.mon.check(t)
}

// TestChaosPGPartitionEtcd: b1 is cut from etcd (lane 2 of the etcd namespace) but still
// reaches the databases. Its write lease lapses half a lease TTL after its last contact: it
// must stop acknowledging writes then, so that a failover elsewhere could never overlap them.
// Reads through it go on. b0 is unaffected, and there is no failover. When etcd is back, b1
// writes again.
func TestChaosPGPartitionEtcd(t *testing.T) {
	ne := newNetEnv(t)
	e, fx := ne.env, ne.fx
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(4, 4)
	st0 := e.mustStatus(e.b[0])
	if err := ne.etcdNS.Cut(laneB1); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	// The lease rule: no write sent through b1 later than TTL/2 after the cut (its last
	// successful round trip to etcd was before the cut) may be acknowledged, with a margin for
	// the lease check's own period (TTL/5).
	limit := cut.Add(leaseTTL/2 + leaseTTL/5)
	time.Sleep(2 * leaseTTL)
	l.readAfter(t, limit, 1, 10*time.Second)
	l.ackedAfter(t, limit, 0, 10*time.Second)
	if at, ok := l.firstAckedAfter(limit, 1); ok {
		t.Errorf("b1, cut off etcd at %s, acknowledged (at %s) a write sent more than TTL/2 + TTL/5 after the cut",
			cut.Format("15:04:05.000"), at.Format("15:04:05.000"))
	}
	if err := ne.etcdNS.Heal(laneB1); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	l.ackedAfter(t, healed, 1, 30*time.Second)
	t.Logf("b1 writes again %v after etcd came back", time.Since(healed).Round(time.Millisecond))
	l.stop()
	if st := e.mustStatus(e.b[0]); st.Epoch != st0.Epoch || st.Primary != fx.name(0) {
		t.Errorf("after b1 lost etcd: epoch %d → %d, primary %s", st0.Epoch, st.Epoch, st.Primary)
	}
	checkNoLoss(t, ctx, fx, l, 0)
	e.mon.check(t)
}

// waitNoSyncRepWaiters waits until no backend of n waits for a synchronous standby.
func waitNoSyncRepWaiters(t *testing.T, ctx context.Context, n *cluster.PGNode) {
	t.Helper()
	cluster.Eventually(t, 20*time.Second, n.Name+" has no commit waiting for a synchronous standby", func() (bool, error) {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(qctx, n.SuperURL())
		if err != nil {
			return false, err
		}
		defer conn.Close(context.Background())
		var k int
		err = conn.QueryRow(qctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&k)
		return err == nil && k == 0, err
	})
}
