package pgtest

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/test/etcdtest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// The tests of this file run two baton instances, a and b, in front of one PostgreSQL cluster,
// sharing a real three-member etcd cluster (separate etcd processes), and break etcd under them.

// etcdRig is the set-up of these tests.
type etcdRig struct {
	etcd *etcdtest.Cluster
	pg   *cluster.PGCluster
	a, b *batontest.Baton
}

// rigOptions: the lease TTL of both instances (0: batontest's 10 s) and the endpoints b uses
// (nil: the etcd members themselves).
type rigOptions struct {
	ttl         time.Duration
	bEndpoints  func(*etcdtest.Cluster) []string
	shortBuffer bool // statements wait at most 300 ms in the failover buffer
}

func startEtcdRig(t *testing.T, o rigOptions) *etcdRig {
	t.Helper()
	r := &etcdRig{etcd: etcdtest.StartForTest(t, 3), pg: cluster.StartPGForTest(t, cluster.PGOptions{})}
	var mod func(*topology.Cluster)
	if o.shortBuffer {
		mod = func(cl *topology.Cluster) { cl.Buffer.Window = topology.Duration(300 * time.Millisecond) }
	}
	r.a = batontest.StartPGBatonWithEtcdForTest(t, r.pg, batontest.EtcdOptions{
		Endpoints: r.etcd.Endpoints(), Instance: "a", LeaseTTL: o.ttl}, mod)
	eps := r.etcd.Endpoints()
	if o.bEndpoints != nil {
		eps = o.bEndpoints(r.etcd)
	}
	r.b = batontest.StartPGBatonWithEtcdForTest(t, r.pg, batontest.EtcdOptions{
		Endpoints: eps, Instance: "b", LeaseTTL: o.ttl}, mod)
	return r
}

var pgNodes = []string{"pg1", "pg2", "pg3"}

// waitRegistered waits until each of stores sees exactly the instances want, each of them
// observing all three PostgreSQL nodes.
func waitRegistered(t *testing.T, ctx context.Context, want []string, stores ...*topology.Store) {
	t.Helper()
	for _, s := range stores {
		waitFor(t, ctx, s.Instance()+" sees instances "+strings.Join(want, ","), func() bool {
			inst, err := s.Instances(ctx)
			return err == nil && slices.Equal(slices.Sorted(slices.Values(inst)), want)
		})
		for _, n := range pgNodes {
			waitFor(t, ctx, s.Instance()+" sees observers "+strings.Join(want, ",")+" of "+n, func() bool {
				obs, err := s.Observers(ctx, "pg", n)
				return err == nil && slices.Equal(slices.Sorted(slices.Values(obs)), want)
			})
		}
	}
}

// bounded runs f with a timeout.
func bounded(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(c)
}

func connectBaton(t *testing.T, ctx context.Context, b *batontest.Baton, c *cluster.PGCluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, b.URL(c))
	if err != nil {
		t.Fatalf("connect through baton %s: %v", b.Cfg.Etcd.Instance, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// watchStates collects the states WatchState delivers until the test ends.
func watchStates(t *testing.T, s *topology.Store, cluster string) <-chan topology.ClusterState {
	ch := make(chan topology.ClusterState, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchState(ctx, cluster, func(st topology.ClusterState) {
			select {
			case ch <- st:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

// writeUntilWatched writes st (raising the epoch on each retry) until watch delivers it: a
// watch is registered asynchronously, so the first write may come before it. It returns the
// state that was watched.
func writeUntilWatched(t *testing.T, ctx context.Context, co *topology.Coordinator, st topology.ClusterState, watch <-chan topology.ClusterState) topology.ClusterState {
	t.Helper()
	for {
		if err := co.WriteState(ctx, st); err != nil {
			t.Fatalf("WriteState: %v", err)
		}
		select {
		case got := <-watch:
			if got != st {
				t.Fatalf("watched state %+v, written %+v", got, st)
			}
			return st
		case <-time.After(2 * time.Second):
			st.Epoch++
		case <-ctx.Done():
			t.Fatal("the state was never watched")
		}
	}
}

// TestEtcdClusterSharedState: two instances sharing a three-member etcd see each other, each
// publishes an observer key for every PostgreSQL node, and the state a coordinator writes is
// read and watched identically by both; the election admits one coordinator at a time, and a
// resigned one can no longer write.
func TestEtcdClusterSharedState(t *testing.T) {
	r := startEtcdRig(t, rigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	sa, sb := r.a.Inst.Store(), r.b.Inst.Store()
	waitRegistered(t, ctx, []string{"a", "b"}, sa, sb)
	// A cluster name of its own: the instances' failover managers campaign for "pg".
	name := uniqueName("coord")
	watchA, watchB := watchStates(t, sa, name), watchStates(t, sb, name)
	co, err := sa.Campaign(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*topology.Store{sa, sb} {
		if l, err := s.Leader(ctx, name); err != nil || l != "a" {
			t.Fatalf("leader seen by %s: %q %v", s.Instance(), l, err)
		}
	}
	st := topology.ClusterState{Epoch: 1, Primary: "pg1", Phase: topology.PhaseStable, Since: time.Unix(1700000000, 0).UTC(), Reason: "etcd cluster test"}
	st = writeUntilWatched(t, ctx, co, st, watchB)
	waitFor(t, ctx, "a watches the state too", func() bool {
		select {
		case got := <-watchA:
			return got == st
		default:
			return false
		}
	})
	for _, s := range []*topology.Store{sa, sb} {
		got, ok, err := s.State(ctx, name)
		if err != nil || !ok || got != st {
			t.Fatalf("state read by %s: %+v %v %v, written %+v", s.Instance(), got, ok, err, st)
		}
	}
	// One coordinator at a time.
	if err := bounded(ctx, time.Second, func(c context.Context) error { _, err := sb.Campaign(c, name); return err }); err == nil {
		t.Fatal("b was elected while a is the coordinator")
	}
	if err := co.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	cb, err := sb.Campaign(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	// (The error is not ErrNotCoordinator: Resign clears the election key the fence compares,
	// and etcd refuses the comparison itself.)
	if err := co.WriteState(ctx, topology.ClusterState{Epoch: 99}); err == nil {
		t.Fatal("a resigned coordinator wrote the state")
	}
	st2 := topology.ClusterState{Epoch: st.Epoch + 1, Primary: "pg2", Phase: topology.PhaseStable, Since: time.Unix(1700000100, 0).UTC()}
	st2 = writeUntilWatched(t, ctx, cb, st2, watchA)
	for _, s := range []*topology.Store{sa, sb} {
		if got, _, err := s.State(ctx, name); err != nil || got != st2 {
			t.Fatalf("state read by %s: %+v %v, written %+v", s.Instance(), got, err, st2)
		}
	}
}

// counter counts the outcomes of a load loop.
type counter struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
}

func (c *counter) record(err error) {
	if err == nil {
		c.ok.Add(1)
		return
	}
	c.failed.Add(1)
	c.mu.Lock()
	if len(c.errs) < 5 {
		c.errs = append(c.errs, err.Error())
	}
	c.mu.Unlock()
}

// mayWriteSampler checks MayWrite of stores every 10 ms until stopped, counting false samples.
type mayWriteSampler struct {
	samples, falses atomic.Int64
	stop            chan struct{}
	done            chan struct{}
	once            sync.Once
}

func sampleMayWrite(stores ...*topology.Store) *mayWriteSampler {
	m := &mayWriteSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			for _, s := range stores {
				m.samples.Add(1)
				if !s.MayWrite() {
					m.falses.Add(1)
				}
			}
			select {
			case <-m.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return m
}

// end stops the sampling and waits for it. Idempotent.
func (m *mayWriteSampler) end() {
	m.once.Do(func() { close(m.stop) })
	<-m.done
}

// TestEtcdMemberKilledUnderLoad: the etcd leader is killed while both instances serve a read
// and a write loop each. Neither client sees an error, MayWrite never turns false, and the
// killed member restarts and rejoins (three healthy members again) while the load goes on.
func TestEtcdMemberKilledUnderLoad(t *testing.T) {
	r := startEtcdRig(t, rigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	sa, sb := r.a.Inst.Store(), r.b.Inst.Store()
	waitRegistered(t, ctx, []string{"a", "b"}, sa, sb)
	table := uniqueName("etcd_load")
	if _, err := connectBaton(t, ctx, r.a, r.pg).Exec(ctx, "CREATE TABLE "+table+" (inst text, n int)"); err != nil {
		t.Fatal(err)
	}
	type loop struct {
		name          string
		conn          *pgx.Conn
		reads, writes counter
	}
	loops := []*loop{{name: "a", conn: connectBaton(t, ctx, r.a, r.pg)}, {name: "b", conn: connectBaton(t, ctx, r.b, r.pg)}}
	readers := []*pgx.Conn{connectBaton(t, ctx, r.a, r.pg), connectBaton(t, ctx, r.b, r.pg)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, l := range loops {
		wg.Add(2)
		go func() { // writes (to the primary, through the write gate)
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				l.writes.record(bounded(ctx, 10*time.Second, func(c context.Context) error {
					_, err := l.conn.Exec(c, "INSERT INTO "+table+" VALUES ($1, $2)", l.name, n)
					return err
				}))
			}
		}()
		go func() { // reads (from the replicas)
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.reads.record(bounded(ctx, 10*time.Second, func(c context.Context) error {
					var rep bool
					return readers[i].QueryRow(c, "SELECT pg_is_in_recovery()").Scan(&rep)
				}))
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	sampler := sampleMayWrite(sa, sb)
	defer sampler.end()
	waitFor(t, ctx, "the load to run", func() bool {
		return loops[0].writes.ok.Load() > 20 && loops[1].writes.ok.Load() > 20 && loops[0].reads.ok.Load() > 20 && loops[1].reads.ok.Load() > 20
	})
	var leader int
	waitFor(t, ctx, "an etcd leader", func() bool {
		l, err := r.etcd.Leader(ctx)
		leader = l
		return err == nil && l >= 0
	})
	before := [2]int64{loops[0].writes.ok.Load(), loops[1].writes.ok.Load()}
	killed := time.Now()
	if err := r.etcd.Member(leader).Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "a new etcd leader", func() bool { l, err := r.etcd.Leader(ctx); return err == nil && l >= 0 && l != leader })
	t.Logf("new etcd leader %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	// Past half the lease TTL: had the instances lost their way to etcd, MayWrite would be
	// false by now (it turns false half a TTL after the last successful round trip).
	ttl := r.a.Cfg.Etcd.LeaseTTL.D()
	waitFor(t, ctx, "half a lease TTL and more writes", func() bool {
		return time.Since(killed) > ttl/2+ttl/5 && loops[0].writes.ok.Load() > before[0]+20 && loops[1].writes.ok.Load() > before[1]+20
	})
	restarted := time.Now()
	if err := r.etcd.Member(leader).Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.etcd.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	cli, err := r.etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("members after the restart: %v %v", ml, err)
	}
	t.Logf("the killed member rejoined %v after its restart; three healthy members", time.Since(restarted).Round(time.Millisecond))
	after := [2]int64{loops[0].writes.ok.Load(), loops[1].writes.ok.Load()}
	waitFor(t, ctx, "writes after the rejoin", func() bool {
		return loops[0].writes.ok.Load() > after[0]+10 && loops[1].writes.ok.Load() > after[1]+10
	})
	stopLoad()
	sampler.end()
	if f := sampler.falses.Load(); f != 0 {
		t.Errorf("MayWrite was false in %d of %d samples while an etcd member died and rejoined", f, sampler.samples.Load())
	}
	var total int64
	for _, l := range loops {
		t.Logf("instance %s: %d writes, %d reads, %d + %d errors", l.name, l.writes.ok.Load(), l.reads.ok.Load(), l.writes.failed.Load(), l.reads.failed.Load())
		if l.writes.failed.Load() != 0 || l.reads.failed.Load() != 0 {
			t.Errorf("instance %s: client errors while an etcd member died: writes %v reads %v", l.name, l.writes.errs, l.reads.errs)
		}
		total += l.writes.ok.Load()
	}
	prim, err := pgx.Connect(ctx, r.pg.Primary.AppURL())
	if err != nil {
		t.Fatal(err)
	}
	defer prim.Close(context.Background())
	var rows int64
	if err := prim.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != total {
		t.Errorf("%d rows, %d acknowledged inserts", rows, total)
	}
}

// refusedWrite reports whether err is baton's refusal of a write (SQLSTATE 57P03).
func refusedWrite(err error) bool { return sqlState(err) == "57P03" }

// untilRefused inserts through conn every 20 ms until baton refuses with 57P03 and returns the
// time since from. Any other error fails the test.
func untilRefused(t *testing.T, ctx context.Context, conn *pgx.Conn, table, who string, from time.Time) time.Duration {
	t.Helper()
	var took time.Duration
	waitFor(t, ctx, "baton "+who+" to refuse writes", func() bool {
		err := bounded(ctx, 10*time.Second, func(c context.Context) error {
			_, err := conn.Exec(c, "INSERT INTO "+table+" VALUES ($1, 0)", who)
			return err
		})
		if err == nil {
			return false
		}
		if !refusedWrite(err) {
			t.Fatalf("baton %s: a write failed with %v, want SQLSTATE 57P03", who, err)
		}
		took = time.Since(from)
		return true
	})
	return took
}

// untilMayNotWrite polls s.MayWrite every 5 ms and returns how long after from it turned false.
func untilMayNotWrite(t *testing.T, ctx context.Context, s *topology.Store, from time.Time) time.Duration {
	t.Helper()
	for s.MayWrite() {
		select {
		case <-ctx.Done():
			t.Fatalf("instance %s still may write", s.Instance())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return time.Since(from)
}

// TestEtcdQuorumLost: two of the three etcd members die. Reads through baton go on; writes are
// refused with 57P03 well within the lease TTL, before any lease can expire; the coordinator's
// fenced writes fail and no coordinator can be elected. When the quorum is back, each instance
// opens a new session (its old one ended), registers again with its observer keys, and takes
// writes again, without a restart of baton; the coordinator elected before the loss is deposed.
func TestEtcdQuorumLost(t *testing.T) {
	const ttl = 4 * time.Second
	r := startEtcdRig(t, rigOptions{ttl: ttl, shortBuffer: true})
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	sa, sb := r.a.Inst.Store(), r.b.Inst.Store()
	waitRegistered(t, ctx, []string{"a", "b"}, sa, sb)
	name := uniqueName("coord")
	co, err := sa.Campaign(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	st := topology.ClusterState{Epoch: 1, Primary: "pg1", Phase: topology.PhaseStable, Since: time.Unix(1700000000, 0).UTC()}
	if err := co.WriteState(ctx, st); err != nil {
		t.Fatal(err)
	}
	table := uniqueName("etcd_quorum")
	ca, cb := connectBaton(t, ctx, r.a, r.pg), connectBaton(t, ctx, r.b, r.pg)
	if _, err := ca.Exec(ctx, "CREATE TABLE "+table+" (inst text, n int)"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pgx.Conn{ca, cb} {
		if _, err := c.Exec(ctx, "INSERT INTO "+table+" VALUES ('before', 0)"); err != nil {
			t.Fatal(err)
		}
	}
	doneA, doneB := sa.Done(), sb.Done() // the sessions in force before the loss
	var leader int
	waitFor(t, ctx, "an etcd leader", func() bool {
		l, err := r.etcd.Leader(ctx)
		leader = l
		return err == nil && l >= 0
	})
	victims := []int{leader, (leader + 1) % 3}
	// Runs before the instances stop, should the test fail with the quorum lost: an instance
	// whose failover manager campaigns cannot shut down while etcd has no quorum.
	t.Cleanup(func() {
		var down []int
		for _, i := range victims {
			if !r.etcd.Member(i).Running() {
				down = append(down, i)
			}
		}
		if len(down) > 0 {
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r.etcd.Restart(rctx, down...); err != nil {
				t.Errorf("restore the etcd quorum: %v", err)
			}
		}
	})
	lost := time.Now()
	for _, i := range victims {
		if err := r.etcd.Member(i).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	gateA := untilMayNotWrite(t, ctx, sa, lost)
	gateB := untilMayNotWrite(t, ctx, sb, lost)
	refA := untilRefused(t, ctx, ca, table, "a", lost)
	refB := untilRefused(t, ctx, cb, table, "b", lost)
	t.Logf("quorum lost: MayWrite false after %v (a) and %v (b); writes refused with 57P03 after %v (a) and %v (b); lease TTL %v, failover buffer window 300 ms",
		gateA.Round(10*time.Millisecond), gateB.Round(10*time.Millisecond), refA.Round(10*time.Millisecond), refB.Round(10*time.Millisecond), ttl)
	for who, d := range map[string]time.Duration{"a": refA, "b": refB} {
		if d >= ttl {
			t.Errorf("baton %s went on taking writes for %v after the quorum was lost (lease TTL %v)", who, d, ttl)
		}
	}
	for who, c := range map[string]*pgx.Conn{"a": ca, "b": cb} {
		var rep bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rep); err != nil || !rep {
			t.Fatalf("a read through baton %s without an etcd quorum: replica=%v %v", who, rep, err)
		}
	}
	if err := bounded(ctx, time.Second, func(c context.Context) error { return co.WriteState(c, topology.ClusterState{Epoch: 2}) }); err == nil {
		t.Fatal("the coordinator wrote the state without a quorum")
	}
	if err := bounded(ctx, time.Second, func(c context.Context) error { _, err := sb.Campaign(c, name); return err }); err == nil {
		t.Fatal("b was elected coordinator without a quorum")
	}
	// The sessions end about a TTL after the last renewal; they cannot come back.
	for who, done := range map[string]<-chan struct{}{"a": doneA, "b": doneB} {
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatalf("the session of %s outlived the quorum", who)
		}
	}
	t.Logf("both sessions ended %v after the quorum was lost", time.Since(lost).Round(10*time.Millisecond))
	if sa.MayWrite() || sb.MayWrite() {
		t.Fatal("MayWrite is true with ended sessions")
	}
	for who, c := range map[string]*pgx.Conn{"a": ca, "b": cb} {
		var rep bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rep); err != nil || !rep {
			t.Fatalf("a read through baton %s after its session ended: replica=%v %v", who, rep, err)
		}
	}

	restored := time.Now()
	if err := r.etcd.Restart(ctx, victims...); err != nil {
		t.Fatal(err)
	}
	t.Logf("quorum restored in %v", time.Since(restored).Round(10*time.Millisecond))
	for who, c := range map[string]*pgx.Conn{"a": ca, "b": cb} {
		waitFor(t, ctx, "writes through baton "+who+" after the quorum came back", func() bool {
			err := bounded(ctx, 10*time.Second, func(c2 context.Context) error {
				_, err := c.Exec(c2, "INSERT INTO "+table+" VALUES ($1, 1)", who)
				return err
			})
			if err != nil && !refusedWrite(err) {
				t.Fatalf("baton %s: a write failed with %v", who, err)
			}
			return err == nil
		})
		t.Logf("baton %s takes writes again %v after the quorum was restored", who, time.Since(restored).Round(10*time.Millisecond))
	}
	if !sa.MayWrite() || !sb.MayWrite() {
		t.Fatal("MayWrite is false after the instances wrote")
	}
	waitRegistered(t, ctx, []string{"a", "b"}, sa, sb)
	// The coordinator elected with a's old session is deposed: its election key went with it.
	waitFor(t, ctx, "the coordinator of the old session to be deposed", func() bool {
		err := bounded(ctx, 2*time.Second, func(c context.Context) error { return co.WriteState(c, topology.ClusterState{Epoch: 3}) })
		return errors.Is(err, topology.ErrNotCoordinator)
	})
	cnew, err := sb.Campaign(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	st2 := topology.ClusterState{Epoch: 2, Primary: "pg1", Phase: topology.PhaseStable, Since: time.Unix(1700000200, 0).UTC()}
	if err := cnew.WriteState(ctx, st2); err != nil {
		t.Fatal(err)
	}
	if got, _, err := sa.State(ctx, name); err != nil || got != st2 {
		t.Fatalf("state read by a: %+v %v, written %+v", got, err, st2)
	}
}

// TestEtcdInstanceDies: instance b is cut off every etcd member at once, as if its machine
// died; nothing revokes its lease. b stops writing first (its MayWrite turns false at half the
// TTL), then its lease expires and a sees b and b's observer keys vanish, within the TTL.
func TestEtcdInstanceDies(t *testing.T) {
	const ttl = 3 * time.Second
	var links []*link
	r := startEtcdRig(t, rigOptions{ttl: ttl, shortBuffer: true, bEndpoints: func(c *etcdtest.Cluster) []string {
		var eps []string
		for _, ep := range c.Endpoints() {
			l := newLink(t, strings.TrimPrefix(ep, "http://"))
			links = append(links, l)
			eps = append(eps, "http://"+l.addr)
		}
		return eps
	}})
	// Runs before b stops: an instance whose failover manager campaigns cannot shut down while
	// etcd is unreachable (the etcd election resigns a cancelled campaign with no deadline).
	t.Cleanup(func() {
		for _, l := range links {
			l.heal(t)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	sa, sb := r.a.Inst.Store(), r.b.Inst.Store()
	waitRegistered(t, ctx, []string{"a", "b"}, sa, sb)
	table := uniqueName("etcd_dies")
	cb := connectBaton(t, ctx, r.b, r.pg)
	if _, err := cb.Exec(ctx, "CREATE TABLE "+table+" (inst text, n int)"); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	for _, l := range links {
		l.cut()
	}
	var gate, gone time.Duration
	for gate == 0 || gone == 0 {
		if gate == 0 && !sb.MayWrite() {
			gate = time.Since(cut)
		}
		if gone == 0 {
			if inst, err := sa.Instances(ctx); err == nil && slices.Equal(inst, []string{"a"}) {
				gone = time.Since(cut)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("b was cut off etcd %v ago: its MayWrite turned false after %v, it vanished after %v (0: not yet)", time.Since(cut), gate, gone)
		case <-time.After(5 * time.Millisecond):
		}
	}
	for _, n := range pgNodes {
		if obs, err := sa.Observers(ctx, "pg", n); err != nil || !slices.Equal(obs, []string{"a"}) {
			t.Fatalf("observers of %s after b's lease expired: %v %v", n, obs, err)
		}
	}
	untilRefused(t, ctx, cb, table, "b", cut) // and its clients get 57P03 for writes
	t.Logf("b cut off etcd: its MayWrite false after %v; b and its observer keys gone from a's view after %v (lease TTL %v)",
		gate.Round(10*time.Millisecond), gone.Round(10*time.Millisecond), ttl)
	if gate >= gone {
		t.Errorf("b could still write %v after a saw its lease expire", gate-gone)
	}
	// The server expires a lease TTL after its last renewal (renewals come every TTL/3) and
	// checks expiries every 500 ms.
	if gone > ttl+time.Second {
		t.Errorf("b stayed registered %v after it was cut off (lease TTL %v)", gone, ttl)
	}
	if gone < ttl*2/3-100*time.Millisecond {
		t.Errorf("b vanished %v after it was cut off, before its lease could expire (TTL %v)", gone, ttl)
	}
}

// link relays TCP from a fixed loopback address to target; cut closes the listener and every
// relayed connection, heal listens on the same address again.
type link struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
	wg           sync.WaitGroup
}

// newLink listens on a port below the ephemeral range (cluster.FreePort): while the link is cut,
// the instance keeps dialling it, and a dial to a free ephemeral port on loopback can connect to
// itself (TCP simultaneous open), holding the port so that heal cannot listen there again.
func newLink(t *testing.T, target string) *link {
	t.Helper()
	var ln net.Listener
	var err error
	for range 5 {
		var port int
		if port, err = cluster.FreePort(); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	l := &link{addr: ln.Addr().String(), target: target}
	l.serve(ln)
	t.Cleanup(func() { l.cut(); l.wg.Wait() })
	return l
}

func (l *link) serve(ln net.Listener) {
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", l.target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, b)
			l.mu.Unlock()
			l.wg.Add(2)
			go func() { defer l.wg.Done(); io.Copy(b, c); b.Close() }()
			go func() { defer l.wg.Done(); io.Copy(c, b); c.Close() }()
		}
	}()
}

func (l *link) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// heal listens on the link's address again (a no-op while it is not cut).
func (l *link) heal(t *testing.T) {
	l.mu.Lock()
	up := l.ln != nil
	l.mu.Unlock()
	if up {
		return
	}
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		t.Errorf("re-open the link to etcd: %v", err)
		return
	}
	l.serve(ln)
}
