package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/jackc/pgx/v5"
)

// The soak (DESIGN §5): one cluster and two baton instances with baton's default settings
// under a steady load, going through every event a failover design must tell apart, over and
// over: the primary busy under full load, three 300 ms stalls of it, a replica restarted, a
// replica cut off, the primary cut off from one instance only, the primary restarted while
// automatic failover is paused — none of which may fail over — and a switchover, kill -9 of the
// primary, a hung primary and a primary cut off from everyone, each of which must change the
// primary exactly once. After each primary change the old primary is re-attached as a replica
// the way an operator would (PostgreSQL: pg_rewind; MariaDB: `baton rejoin`, or a rebuild from
// a dump when baton says it diverged), so the next pass starts from three nodes again.
//
// A false failover is a primary change nobody asked for: during an event that must not fail
// over, in the quiet time between events, or a second one during a failover event. The run
// fails on any, and on any split brain (the monitor), lost acknowledged write, or client error
// where none may happen.
//
// BATON_CHAOS_SOAK sets how long the soak runs (e.g. 20m, `make soak`); unset, it makes one pass
// (`make test`). Partition events need root (network namespaces); without it they are left out
// with a printed line (and in CI the test fails instead, as the partition tests do).

func TestChaosPGSoak(t *testing.T) { testSoak(t, startPGWith) }
func TestChaosMySoak(t *testing.T) { testSoak(t, startMyWith) }

// soakEvent is one kind of event of the soak.
type soakEvent struct {
	name string
	// want is how many primary changes the event must cause.
	want int
	// netns: the event needs the nodes in network namespaces.
	netns bool
	// run performs the event and returns, for events with want 1, when the first write sent
	// after the fault was acknowledged minus when the fault began.
	run func(s *soak) time.Duration
	// maxErrors is how many client operations that ended during the event may fail (-1: any,
	// reported only).
	maxErrors int
}

// soakStat is what the soak saw of one kind of event.
type soakStat struct {
	runs, changes, falseFailovers, errors int
	times                                 []time.Duration
}

type soak struct {
	t       *testing.T
	ctx     context.Context
	e       *env
	ne      *netEnv // nil: nodes on loopback
	fx      *fixture
	l       *load
	primary int    // index of the current primary
	epoch   uint64 // its epoch
	stats   map[string]*soakStat
	order   []string
}

// soakDuration is $BATON_CHAOS_SOAK, 0 (one pass) when unset.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("BATON_CHAOS_SOAK")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("BATON_CHAOS_SOAK=%q: want a duration such as 20m", v)
	}
	return d
}

func testSoak(t *testing.T, start func(*testing.T, *cluster.NetLab) *fixture) {
	s := &soak{t: t, stats: map[string]*soakStat{}}
	if err := cluster.NetnsAvailable(); err == nil {
		s.ne = newNetEnv(t, start)
		s.e = s.ne.env
	} else {
		if os.Getenv("CI") != "" || os.Geteuid() == 0 {
			cluster.RequireNetns(t) // fails: partitions must be part of the soak here
		}
		fmt.Printf("%s: partition events left out: %v (they need root and iproute2)\n", t.Name(), err)
		s.e = newEnv(t, start(t, nil), envOptions{})
	}
	s.fx = s.e.fx
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.ctx = ctx
	s.l = s.e.startLoad(4, 2)
	st := s.e.mustStatus(s.e.b[0])
	s.primary, s.epoch = s.fx.index(t, st.Primary), st.Epoch

	events := []soakEvent{
		{name: "busy primary", run: (*soak).busy},
		{name: "300 ms stalls", run: (*soak).stalls},
		{name: "replica restart", run: (*soak).replicaRestart, maxErrors: -1},
		{name: "replica cut off", netns: true, run: (*soak).replicaCut, maxErrors: -1},
		{name: "asymmetric cut", netns: true, run: (*soak).asymmetricCut, maxErrors: -1},
		{name: "paused restart", run: (*soak).pausedRestart, maxErrors: -1},
		{name: "switchover", want: 1, run: (*soak).switchover},
		{name: "kill -9", want: 1, run: (*soak).kill, maxErrors: -1},
		{name: "hung primary", want: 1, run: (*soak).hung, maxErrors: -1},
		{name: "isolated primary", want: 1, netns: true, run: (*soak).isolated, maxErrors: -1},
	}
	total := soakDuration(t)
	began := time.Now()
	for pass := 1; ; pass++ {
		for _, ev := range events {
			if ev.netns && s.ne == nil {
				continue
			}
			s.event(ev)
			s.quiet(3 * time.Second)
		}
		s.checkNoLoss()
		t.Logf("soak: pass %d done after %v", pass, time.Since(began).Round(time.Second))
		if time.Since(began) >= total || t.Failed() {
			break
		}
	}
	s.l.stop()
	s.checkNoLoss()
	s.e.mon.check(t)
	s.report(time.Since(began))
}

// event runs one event and accounts for the primary changes and client errors it caused.
func (s *soak) event(ev soakEvent) {
	t := s.t
	t.Helper()
	st := s.stat(ev.name)
	before := s.epoch
	from := time.Now()
	t.Logf("soak: %s %s (primary %s, epoch %d)", from.Format("15:04:05.000"), ev.name, s.fx.name(s.primary), before)
	took := ev.run(s)
	st.runs++
	cur := s.settled()
	changes := int(cur.Epoch - before)
	st.changes += changes
	if changes > ev.want {
		st.falseFailovers += changes - ev.want
		t.Errorf("soak: %s: %d primary changes (want %d): epoch %d → %d, primary %s", ev.name, changes, ev.want, before, cur.Epoch, cur.Primary)
	}
	if ev.want > 0 && changes >= 1 {
		st.times = append(st.times, took)
	}
	errs := s.l.failures(func(o op) bool { return o.end.After(from) })
	st.errors += len(errs)
	if ev.maxErrors >= 0 && len(errs) > ev.maxErrors {
		for _, o := range errs {
			t.Logf("error: %v", o)
		}
		t.Errorf("soak: %s: %d client errors (at most %d may happen)", ev.name, len(errs), ev.maxErrors)
	}
	s.follow(cur)
}

// quiet lets the load run for d and counts any primary change in it as a false failover.
func (s *soak) quiet(d time.Duration) {
	st := s.stat("quiet (between events)")
	from := time.Now()
	before := s.epoch
	end := from.Add(d)
	for time.Now().Before(end) {
		time.Sleep(100 * time.Millisecond)
	}
	st.runs++
	cur := s.settled()
	if n := int(cur.Epoch - before); n > 0 {
		st.changes += n
		st.falseFailovers += n
		s.t.Errorf("soak: %d primary changes with no fault: epoch %d → %d, primary %s", n, before, cur.Epoch, cur.Primary)
	}
	if errs := s.l.failures(func(o op) bool { return o.end.After(from) }); len(errs) > 0 {
		st.errors += len(errs)
		s.t.Errorf("soak: %d client errors with no fault, first: %v", len(errs), errs[0])
	}
	s.follow(cur)
}

// settled waits until both instances are stable on the same primary and epoch, and returns it.
func (s *soak) settled() admin.ClusterStatus {
	var st admin.ClusterStatus
	cluster.Eventually(s.t, 60*time.Second, "both instances stable on one primary", func() (bool, error) {
		a, err := s.e.b[0].status()
		if err != nil {
			return false, err
		}
		b, err := s.e.b[1].status()
		if err != nil {
			return false, err
		}
		st = a
		return a.Phase == "stable" && b.Phase == "stable" && a.Primary != "" && a.Primary == b.Primary && a.Epoch == b.Epoch, nil
	})
	return st
}

// follow takes the primary of st as the current one; an old primary that lost the role is
// re-attached as a replica.
func (s *soak) follow(st admin.ClusterStatus) {
	p := s.fx.index(s.t, st.Primary)
	old := s.primary
	s.primary, s.epoch = p, st.Epoch
	if p != old {
		s.reattach(old)
	}
}

// reattach makes node old, which lost the primary role, a readable replica of the current
// primary again, as an operator would, and waits until both instances read from it.
func (s *soak) reattach(old int) {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	began := time.Now()
	name, primary := s.fx.name(old), s.fx.name(s.primary)
	// A node that comes back must not get writes before it is re-attached (fenced).
	if s.fx.nodes[old].PID() == 0 {
		if err := s.fx.nodes[old].Start(ctx); err != nil {
			t.Fatalf("soak: restart %s: %v", name, err)
		}
	}
	checkFenced(t, ctx, s.e, old, primary, false)
	how := ""
	switch s.fx.engine {
	case "pg":
		how = "pg_rewind"
		if err := s.fx.pg.Rejoin(ctx, s.fx.nodes[old].(*cluster.PGNode), s.fx.nodes[s.primary].(*cluster.PGNode)); err != nil {
			t.Fatalf("soak: re-attach %s: %v", name, err)
		}
	case "my":
		p := s.fx.nodes[s.primary].(*cluster.MyNode)
		s.fx.my.Promoted(p)
		// A switchover re-points the old primary itself.
		if rec, err := s.fx.inRecovery(ctx, old); err == nil && rec {
			how = "re-pointed by the switchover"
			break
		}
		out, err := s.e.b[0].control(ctx, "rejoin", s.fx.engine, "--node", name)
		how = "baton rejoin"
		if err != nil {
			if !strings.Contains(out, "diverged") {
				t.Fatalf("soak: baton rejoin %s: %v\n%s", name, err, out)
			}
			how = "rebuilt from a dump (baton rejoin: diverged)"
			if err := s.fx.my.Rebuild(ctx, s.fx.nodes[old].(*cluster.MyNode), p); err != nil {
				t.Fatalf("soak: %v", err)
			}
		}
	}
	s.e.waitAll(60*time.Second, name+" readable again", func(st admin.ClusterStatus) bool {
		n, _ := node(st, name)
		return st.Phase == "stable" && st.Primary == primary && n.Readable && n.Diverged == "" && !n.Fenced
	})
	t.Logf("soak: %s %s re-attached to %s (%s) in %v", time.Now().Format("15:04:05.000"), name, primary, how, time.Since(began).Round(time.Millisecond))
}

func (s *soak) stat(name string) *soakStat {
	st, ok := s.stats[name]
	if !ok {
		st = &soakStat{}
		s.stats[name] = st
		s.order = append(s.order, name)
	}
	return st
}

// replica returns a replica's index: the one after the primary.
func (s *soak) replica() int { return (s.primary + 1) % len(s.fx.nodes) }

// waitAcked waits until both instances acknowledged a write sent after from.
func (s *soak) waitAcked(from time.Time) {
	for i := range s.e.b {
		s.l.ackedAfter(s.t, from, i, 30*time.Second)
	}
}

// busy saturates the primary for 20 s: CPU-bound queries (two per core and more) and a bulk
// writer, straight to the node, beside the load through baton.
func (s *soak) busy() time.Duration {
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	heavy, bulk := s.heavySQL()
	for k := range 7 {
		qs := []string{heavy}
		if k == 0 {
			qs = bulk
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				s.direct(ctx, s.primary, qs...)
			}
		})
	}
	wg.Wait()
	s.waitAcked(time.Now())
	return 0
}

// heavySQL is a CPU-bound query and the statements of a bulk write for the engine.
func (s *soak) heavySQL() (heavy string, bulk []string) {
	// The table has a primary key: row-based replication of a DELETE on a table without one
	// scans the table once per row on every replica (MariaDB stalled a minute on it).
	if s.fx.engine == "pg" {
		return "SELECT sum(i) FROM generate_series(1, 5000000) i",
			[]string{"CREATE TABLE IF NOT EXISTS busy (i int PRIMARY KEY)", "INSERT INTO busy SELECT generate_series(1, 100000)", "DELETE FROM busy"}
	}
	return "SELECT BENCHMARK(3000000, SHA2('baton', 256))",
		[]string{"CREATE TABLE IF NOT EXISTS busy (i INT PRIMARY KEY)", "INSERT INTO busy SELECT seq FROM seq_1_to_100000", "DELETE FROM busy"}
}

// direct runs qs on node i as the administrator (errors ignored: the context ends them).
func (s *soak) direct(ctx context.Context, i int, qs ...string) {
	switch n := s.fx.nodes[i].(type) {
	case *cluster.PGNode:
		conn, err := pgx.Connect(ctx, n.SuperURL())
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		for _, q := range qs {
			conn.Exec(ctx, q)
		}
	case *cluster.MyNode:
		db, err := sql.Open("mysql", n.RootDSN())
		if err != nil {
			return
		}
		defer db.Close()
		for _, q := range qs {
			db.ExecContext(ctx, q)
		}
	}
}

// stalls stops the primary three times for 300 ms.
func (s *soak) stalls() time.Duration {
	for range 3 {
		resume := hang(s.t, s.fx, s.primary)
		stalled := time.Now()
		time.Sleep(300 * time.Millisecond)
		resume()
		s.waitAcked(stalled.Add(300 * time.Millisecond))
		time.Sleep(time.Second)
	}
	return 0
}

// replicaRestart stops a replica (fast shutdown) and starts it again.
func (s *soak) replicaRestart() time.Duration {
	r := s.replica()
	if err := s.fx.nodes[r].Stop(); err != nil {
		s.t.Fatal(err)
	}
	if err := s.fx.nodes[r].Start(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	s.waitReadable(r)
	return 0
}

func (s *soak) waitReadable(i int) {
	name, primary := s.fx.name(i), s.fx.name(s.primary)
	s.e.waitAll(60*time.Second, name+" readable", func(st admin.ClusterStatus) bool {
		n, _ := node(st, name)
		return st.Phase == "stable" && st.Primary == primary && n.Readable
	})
}

// replicaCut drops every packet of a replica for 5 s.
func (s *soak) replicaCut() time.Duration {
	r := s.replica()
	if err := s.fx.ns[r].Cut(); err != nil {
		s.t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if err := s.fx.ns[r].Heal(); err != nil {
		s.t.Fatal(err)
	}
	s.waitReadable(r)
	return 0
}

// asymmetricCut cuts the primary off from instance b1 only, for 6 s (longer than b1 needs to
// withdraw its observation, plus grace): b0 still observes it, so no failover.
func (s *soak) asymmetricCut() time.Duration {
	if err := s.fx.ns[s.primary].Cut(laneB1); err != nil {
		s.t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	if err := s.fx.ns[s.primary].Heal(laneB1); err != nil {
		s.t.Fatal(err)
	}
	s.l.ackedAfter(s.t, time.Now(), 1, 30*time.Second)
	return 0
}

// pausedRestart is planned maintenance: `baton pause`, a restart of the primary, `baton
// resume`.
func (s *soak) pausedRestart() time.Duration {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if out, err := s.e.b[0].control(ctx, "pause", s.fx.engine, "--reason", "soak: primary restart"); err != nil {
		s.t.Fatalf("baton pause: %v\n%s", err, out)
	}
	s.e.waitAll(10*time.Second, "failover paused", func(st admin.ClusterStatus) bool { return st.FailoverPaused })
	if err := s.fx.nodes[s.primary].Stop(); err != nil {
		s.t.Fatal(err)
	}
	if err := s.fx.nodes[s.primary].Start(ctx); err != nil {
		s.t.Fatal(err)
	}
	s.waitAcked(time.Now())
	if out, err := s.e.b[1].control(ctx, "resume", s.fx.engine); err != nil {
		s.t.Fatalf("baton resume: %v\n%s", err, out)
	}
	s.e.waitAll(10*time.Second, "failover resumed", func(st admin.ClusterStatus) bool { return !st.FailoverPaused })
	return 0
}

// switchover runs `baton switchover` and returns the write pause.
func (s *soak) switchover() time.Duration {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	began := time.Now()
	if out, err := s.e.b[1].control(ctx, "switchover", s.fx.engine); err != nil {
		s.t.Fatalf("baton switchover: %v\n%s", err, out)
	}
	s.waitChanged()
	resumed := time.Now()
	for i := range s.e.b {
		if at := s.l.ackedAfter(s.t, began, i, 20*time.Second); at.After(resumed) {
			resumed = at
		}
	}
	return s.l.maxGap(began, resumed)
}

// waitChanged waits until both instances route writes to a new primary.
func (s *soak) waitChanged() admin.ClusterStatus {
	old, epoch := s.fx.name(s.primary), s.epoch
	return s.e.waitAll(60*time.Second, "a new primary", func(st admin.ClusterStatus) bool {
		return st.Phase == "stable" && st.Epoch > epoch && st.Primary != "" && st.Primary != old
	})
}

// kill kills -9 the primary.
func (s *soak) kill() time.Duration {
	if err := s.fx.nodes[s.primary].Kill(); err != nil {
		s.t.Fatal(err)
	}
	killed := time.Now()
	took := s.l.ackedAfter(s.t, killed, anyInst, 60*time.Second).Sub(killed)
	s.waitChanged()
	return took
}

// hung SIGSTOPs the primary until a new one took over.
func (s *soak) hung() time.Duration {
	p := s.primary
	resume := hang(s.t, s.fx, p)
	if !waitStopped(s.fx.nodes[p].PID(), time.Second) {
		s.t.Fatalf("%s is not stopped 1 s after SIGSTOP", s.fx.name(p))
	}
	stopped := time.Now()
	took := s.l.ackedAfter(s.t, stopped, anyInst, 60*time.Second).Sub(stopped)
	s.waitChanged()
	resume()
	return took
}

// isolated drops every packet of the primary until a new one took over.
func (s *soak) isolated() time.Duration {
	p := s.primary
	if err := s.fx.ns[p].Cut(); err != nil {
		s.t.Fatal(err)
	}
	cut := time.Now()
	took := s.l.ackedAfter(s.t, cut, anyInst, 60*time.Second).Sub(cut)
	s.waitChanged()
	if err := s.fx.ns[p].Heal(); err != nil {
		s.t.Fatal(err)
	}
	return took
}

// checkNoLoss checks that every acknowledged write is on the current primary, and names the
// lost ones with when and through which instance they were acknowledged, against the events'
// log lines.
func (s *soak) checkNoLoss() {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	// The acknowledged writes first: a write acknowledged after the rows were read is not lost.
	s.l.mu.Lock()
	writes := slices.Clone(s.l.writes)
	s.l.mu.Unlock()
	have, err := s.rowsOn(ctx, s.primary)
	if err != nil {
		t.Fatalf("soak: read the acknowledged writes on %s: %v", s.fx.name(s.primary), err)
	}
	var lost []okWrite
	for _, w := range writes {
		if !have[[2]int{w.w, w.seq}] {
			lost = append(lost, w)
			t.Errorf("soak: lost: write (%d, %d) sent at %s through baton %d, acknowledged at %s, is not on the primary %s",
				w.w, w.seq, w.start.Format("15:04:05.000"), w.inst, w.end.Format("15:04:05.000"), s.fx.name(s.primary))
		}
	}
	if len(lost) > 0 {
		for i := range s.fx.nodes {
			on, err := s.rowsOn(ctx, i)
			k := 0
			for _, w := range lost {
				if on[[2]int{w.w, w.seq}] {
					k++
				}
			}
			t.Logf("soak: %s holds %d of the %d lost writes (%v)", s.fx.name(i), k, len(lost), err)
		}
	}
	t.Logf("soak: %d acknowledged writes, %d lost", len(writes), len(lost))
}

// rowsOn is the set of the load's rows on node i (loadRows).
func (s *soak) rowsOn(ctx context.Context, i int) (map[[2]int]bool, error) {
	rows, err := loadRows(ctx, s.fx, i)
	have := map[[2]int]bool{}
	for w, seqs := range rows {
		for _, seq := range seqs {
			have[[2]int{w, seq}] = true
		}
	}
	return have, err
}

// report prints the soak's table.
func (s *soak) report(d time.Duration) {
	var b strings.Builder
	w, r := s.l.counts()
	fmt.Fprintf(&b, "soak (%s, %v, default settings; %d acknowledged writes, %d reads):\n", s.fx.engine, d.Round(time.Second), w, r)
	fmt.Fprintf(&b, "%-24s %5s %8s %6s %7s %10s %10s\n", "event", "runs", "changes", "false", "errors", "p50", "max")
	falses := 0
	for _, name := range s.order {
		st := s.stats[name]
		falses += st.falseFailovers
		p50, mx := "", ""
		if len(st.times) > 0 {
			ts := slices.Clone(st.times)
			slices.Sort(ts)
			p50, mx = ts[(len(ts)-1)/2].Round(time.Millisecond).String(), ts[len(ts)-1].Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-24s %5d %8d %6d %7d %10s %10s\n", name, st.runs, st.changes, st.falseFailovers, st.errors, p50, mx)
	}
	fmt.Fprintf(&b, "false failovers: %d\n", falses)
	if s.ne == nil {
		b.WriteString("partition events left out: network namespaces need root\n")
	}
	fmt.Print(b.String())
	s.t.Log("\n" + b.String())
}
