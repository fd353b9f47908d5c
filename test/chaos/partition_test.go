package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/test/etcdtest"
	"github.com/jackc/pgx/v5"
)

// Real network partitions (DESIGN §5): the database nodes (PostgreSQL or MariaDB) and the etcd
// members run in network namespaces of their own (cluster.NetLab), each joined to the host by three lanes: lane 0
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

// netStarter starts a fixture with its nodes in namespaces of lab (startPGWith, startMyWith).
type netStarter func(t *testing.T, lab *cluster.NetLab) *fixture

// newNetEnv starts a lab, etcd in a namespace, a database cluster (start) with a namespace per
// node and two baton instances, each on its own lane, with baton's default failover settings.
func newNetEnv(t *testing.T, start netStarter) *netEnv {
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
	fx := start(t, lab)
	e := newEnv(t, fx, envOptions{etcd: etcd, instance: func(i int, s *spec) {
		lane := []int{laneB0, laneB1}[i]
		for k := range s.nodes {
			s.nodes[k] = fx.lanes[k](lane)
		}
		s.endpoints = etcd.LaneEndpoints(lane)
	}})
	return &netEnv{env: e, lab: lab, etcdNS: etcdNS}
}

// TestChaosPGPartitionPrimary: testPartitionPrimary on PostgreSQL (synchronous ANY 1); timing
// row "postgres isolated".
func TestChaosPGPartitionPrimary(t *testing.T) {
	testPartitionPrimary(t, startPGWith, "postgres isolated")
}

// TestChaosMyPartitionPrimary: testPartitionPrimary on MariaDB (semi-synchronous); timing row
// "mariadb isolated". The isolated primary's commits that were waiting for a replica's ack
// commit there when rpl_semi_sync_master_timeout (10 s) runs out, unacknowledged (their clients'
// connections are cut): when the links come back it may have diverged from the new primary, and
// must be fenced all the same.
func TestChaosMyPartitionPrimary(t *testing.T) {
	testPartitionPrimary(t, startMyWith, "mariadb isolated")
}

// testPartitionPrimary: the primary's namespace is cut from everyone (every lane drops packets).
// Both instances see only timeouts; baton fails over within the weak-evidence bound, no
// acknowledged write is lost ((semi-)synchronous replication), never two primaries are routed
// to, and when the links come back the old primary is fenced and gets no writes.
// BATON_CHAOS_RUNS repeats it for the timing table (row).
func testPartitionPrimary(t *testing.T, start netStarter, row string) {
	cluster.RequireNetns(t)
	for r := range chaosRuns(t) {
		t.Run(fmt.Sprintf("run%d", r+1), func(t *testing.T) {
			ne := newNetEnv(t, start)
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
			recordTiming(row, took)
			newP := fx.index(t, st.Primary)
			checkOnePrimary(t, ctx, fx, newP, 0)
			if fx.engine == "my" {
				// The isolated MariaDB primary commits what waited for a replica's ack when its
				// semi-sync timeout runs out, acknowledged to no one. Let that happen before the
				// links come back: the OK packets queued on its connections to baton then reach
				// baton, which must have dropped those connections at failing_over (or
				// checkNoLoss finds acknowledged writes the new primary lacks).
				waitSemiSyncDone(t, ctx, fx, 0)
			}
			healed = true
			if err := fx.ns[0].Heal(); err != nil {
				t.Fatal(err)
			}
			checkFenced(t, ctx, e, 0, st.Primary, fx.engine == "pg")
			// Commits that were waiting for a synchronous standby (a semi-sync ack) when the
			// links went down become visible on the old primary when the fence terminates their
			// sessions or the semi-sync timeout runs out (never acknowledged: their clients'
			// connections were cut at failing_over). Count from when none is left.
			waitNoCommitWaiters(t, ctx, fx, 0)
			checkDivergedShown(t, ctx, e, 0, newP)
			checkNoWrites(t, ctx, e, l, 0)
			l.stop()
			checkNoLoss(t, ctx, fx, l, newP)
			checkNothingMore(t, ctx, fx, newP, 0)
			e.mon.check(t)
		})
	}
}

// checkNothingMore checks that no node but newP and skip holds a row of the load that the
// primary newP lacks: the replicas follow the new primary and were not ahead of it.
func checkNothingMore(t *testing.T, ctx context.Context, fx *fixture, newP, skip int) {
	t.Helper()
	for i := range fx.nodes {
		if i == newP || i == skip {
			continue
		}
		extra := extraRows(t, ctx, fx, i, newP)
		if extra > 0 {
			t.Errorf("replica %s holds %d rows the primary %s lacks", fx.name(i), extra, fx.name(newP))
		}
	}
}

func TestChaosPGPartitionReplica(t *testing.T) { testPartitionReplica(t, startPGWith) }
func TestChaosMyPartitionReplica(t *testing.T) { testPartitionReplica(t, startMyWith) }

// testPartitionReplica: a replica's namespace is cut from everyone. No failover; writes go on
// (the other replica is synchronous, or acknowledges semi-synchronously); the replica leaves the
// read set and returns when the links come back.
func testPartitionReplica(t *testing.T, start netStarter) {
	ne := newNetEnv(t, start)
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

func TestChaosPGPartitionAsymmetric(t *testing.T) { testPartitionAsymmetric(t, startPGWith) }
func TestChaosMyPartitionAsymmetric(t *testing.T) { testPartitionAsymmetric(t, startMyWith) }

// testPartitionAsymmetric: the primary stays reachable by b0 but not by b1. b0 still observes
// it, so there is no failover (DESIGN §3: a failover needs every live instance to have lost the
// primary) and writes through b0 go on; b1's writes wait in its buffer and fail after its
// window. When the link comes back, b1 writes again.
func testPartitionAsymmetric(t *testing.T, start netStarter) {
	ne := newNetEnv(t, start)
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

func TestChaosPGPartitionEtcd(t *testing.T) { testPartitionEtcd(t, startPGWith) }
func TestChaosMyPartitionEtcd(t *testing.T) { testPartitionEtcd(t, startMyWith) }

// testPartitionEtcd: b1 is cut from etcd (lane 2 of the etcd namespace) but still reaches the
// databases. Its write lease lapses half a lease TTL after its last contact: it must stop
// acknowledging writes then, so that a failover elsewhere could never overlap them. Reads
// through it go on. b0 is unaffected, and there is no failover. When etcd is back, b1 writes
// again.
func testPartitionEtcd(t *testing.T, start netStarter) {
	ne := newNetEnv(t, start)
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

// waitNoCommitWaiters waits until no session of node i waits for a replica to acknowledge its
// commit: PostgreSQL, no backend waits for a synchronous standby; MariaDB, no session waits for
// a semi-sync ack.
func waitNoCommitWaiters(t *testing.T, ctx context.Context, fx *fixture, i int) {
	t.Helper()
	switch n := fx.nodes[i].(type) {
	case *cluster.PGNode:
		waitNoSyncRepWaiters(t, ctx, n)
	case *cluster.MyNode:
		waitNoSemiSyncWaiters(t, ctx, n)
	default:
		t.Fatalf("%s: unknown node type %T", fx.name(i), n)
	}
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

// waitNoSemiSyncWaiters waits until no session of n waits for a semi-sync ack
// (Rpl_semi_sync_master_wait_sessions is 0). A waiting commit ends at the latest when
// rpl_semi_sync_master_timeout (10 s in the fixture) runs out.
func waitNoSemiSyncWaiters(t *testing.T, ctx context.Context, n *cluster.MyNode) {
	t.Helper()
	cluster.Eventually(t, 20*time.Second, n.Name+" has no commit waiting for a semi-sync ack", func() (bool, error) {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		db, err := sql.Open("mysql", n.RootDSN())
		if err != nil {
			return false, err
		}
		defer db.Close()
		var k int
		err = db.QueryRowContext(qctx, "SELECT variable_value FROM information_schema.global_status "+
			"WHERE variable_name = 'RPL_SEMI_SYNC_MASTER_WAIT_SESSIONS'").Scan(&k)
		return err == nil && k == 0, err
	})
}

// waitSemiSyncDone waits, over its unix socket (it may be cut off the network), until no
// session of MariaDB node i waits for a semi-sync ack: a commit that does gives up waiting after
// rpl_semi_sync_master_timeout (10 s in the fixture) and commits locally.
func waitSemiSyncDone(t *testing.T, ctx context.Context, fx *fixture, i int) {
	t.Helper()
	n := fx.nodes[i].(*cluster.MyNode)
	began := time.Now()
	var waiting, status string
	cluster.Eventually(t, 30*time.Second, fx.name(i)+" (over its socket) has no commit waiting for a semi-sync ack", func() (bool, error) {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		db, err := sql.Open("mysql", fmt.Sprintf("root:%s@unix(%s)/", fx.my.Opts.RootPassword, n.Socket()))
		if err != nil {
			return false, err
		}
		defer db.Close()
		err = db.QueryRowContext(qctx, "SELECT "+
			"(SELECT variable_value FROM information_schema.global_status WHERE variable_name = 'RPL_SEMI_SYNC_MASTER_WAIT_SESSIONS'), "+
			"(SELECT variable_value FROM information_schema.global_status WHERE variable_name = 'RPL_SEMI_SYNC_MASTER_STATUS')").Scan(&waiting, &status)
		return err == nil && waiting == "0", err
	})
	t.Logf("%s, cut off: no commit waits for a semi-sync ack after %v more (semi-sync status %s)", fx.name(i), time.Since(began).Round(time.Millisecond), status)
}

// checkDivergedShown: when the old primary i holds rows of the load that the new primary newP
// lacks (commits that waited for a replica when it was cut off and then committed there,
// acknowledged to no one), it has diverged, and both instances must say so.
func checkDivergedShown(t *testing.T, ctx context.Context, e *env, i, newP int) {
	t.Helper()
	fx := e.fx
	extra := extraRows(t, ctx, fx, i, newP)
	if extra == 0 {
		t.Logf("%s holds no row %s lacks", fx.name(i), fx.name(newP))
		return
	}
	if _, ok := fx.nodes[i].(*cluster.MyNode); ok {
		t.Logf("%s holds %d rows %s lacks: GTIDs %s; %s", fx.name(i), extra, fx.name(newP), myGTIDs(ctx, fx, i), myGTIDs(ctx, fx, newP))
	}
	st := e.waitAll(30*time.Second, fx.name(i)+" shown diverged", func(s admin.ClusterStatus) bool {
		n, ok := node(s, fx.name(i))
		return ok && n.Diverged != ""
	})
	n, _ := node(st, fx.name(i))
	t.Logf("%s holds %d rows %s lacks; baton shows it diverged: %s", fx.name(i), extra, fx.name(newP), n.Diverged)
}

// myGTIDs describes the GTID positions of MariaDB node i, for the log.
func myGTIDs(ctx context.Context, fx *fixture, i int) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", fx.nodes[i].(*cluster.MyNode).RootDSN())
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var pos, state string
	if err := db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos, @@gtid_binlog_state").Scan(&pos, &state); err != nil {
		return fmt.Sprintf("%s: %v", fx.name(i), err)
	}
	return fmt.Sprintf("%s gtid_binlog_pos %s, gtid_binlog_state %s", fx.name(i), pos, state)
}

// extraRows counts the load's rows on node i that node newP lacks.
func extraRows(t *testing.T, ctx context.Context, fx *fixture, i, newP int) int {
	t.Helper()
	var rows map[int][]int
	cluster.Eventually(t, 10*time.Second, "the rows of "+fx.name(i), func() (bool, error) {
		var err error
		rows, err = loadRows(ctx, fx, i)
		return err == nil, err
	})
	extra, err := fx.missing(ctx, newP, rows)
	if err != nil {
		t.Fatalf("rows of %s on %s: %v", fx.name(i), fx.name(newP), err)
	}
	return extra
}

// loadRows returns the load's rows on node i (writer → sequence numbers).
func loadRows(ctx context.Context, fx *fixture, i int) (map[int][]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a soak's table holds ~10^6 rows
	defer cancel()
	out := map[int][]int{}
	switch n := fx.nodes[i].(type) {
	case *cluster.PGNode:
		conn, err := pgx.Connect(ctx, n.SuperURL())
		if err != nil {
			return nil, err
		}
		defer conn.Close(context.Background())
		rows, _ := conn.Query(ctx, "SELECT w, seq FROM acked")
		var w, seq int
		_, err = pgx.ForEachRow(rows, []any{&w, &seq}, func() error {
			out[w] = append(out[w], seq)
			return nil
		})
		return out, err
	case *cluster.MyNode:
		db, err := sql.Open("mysql", n.RootDSN())
		if err != nil {
			return nil, err
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, "SELECT w, seq FROM acked")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var w, seq int
			if err := rows.Scan(&w, &seq); err != nil {
				return nil, err
			}
			out[w] = append(out[w], seq)
		}
		return out, rows.Err()
	}
	return nil, fmt.Errorf("%s: unknown node type %T", fx.name(i), fx.nodes[i])
}
