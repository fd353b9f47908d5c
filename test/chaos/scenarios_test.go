package chaos

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/test/etcdtest"
)

// hang SIGSTOPs node i (the server process and its children) and SIGCONTs it when the test
// ends, should the test not have done it.
func hang(t *testing.T, fx *fixture, i int) (resume func()) {
	t.Helper()
	pid := fx.nodes[i].PID()
	if pid == 0 {
		t.Fatalf("%s is not running", fx.name(i))
	}
	if err := signalTree(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", fx.name(i), err)
	}
	done := false
	resume = func() {
		if !done {
			done = true
			signalTree(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

func TestChaosPGHungPrimary(t *testing.T) { testHungPrimary(t, startPG(t)) }

// TestChaosMyHungPrimary: statements in flight on the hung MariaDB primary commit there when it
// resumes (semi-sync does not wait without a connected replica); baton must have cut its
// connections to the old primary on failing_over so that they reach clients as errors, never as
// acknowledged writes missing from the new primary.
func TestChaosMyHungPrimary(t *testing.T) { testHungPrimary(t, startMy(t)) }

// testHungPrimary (scenario 2): the primary hangs (SIGSTOP), baton fails over; when it resumes
// it is fenced, not routed to and gets no writes.
func testHungPrimary(t *testing.T, fx *fixture) {
	e := newEnv(t, fx, fastProbes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(4, 2)
	st0 := e.mustStatus(e.b[0])
	old := fx.name(0)
	stopped := time.Now()
	resume := hang(t, fx, 0)
	st := e.waitAll(30*time.Second, "one new primary published", func(s admin.ClusterStatus) bool {
		return s.Phase == "stable" && s.Epoch > st0.Epoch && s.Primary != "" && s.Primary != old
	})
	t.Logf("SIGSTOP of %s → new primary %s (epoch %d) after %v", old, st.Primary, st.Epoch, time.Since(stopped).Round(time.Millisecond))
	// The old primary resumes at once: statements that were in flight on it when it hung are
	// still waiting (the clients' timeout is 20 s) and must not commit there.
	resume()
	for i := range e.b {
		l.ackedAfter(t, stopped, i, 30*time.Second)
	}
	t.Logf("writes acknowledged through both instances %v after the SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	newP := fx.index(t, st.Primary)
	checkOnePrimary(t, ctx, fx, newP, 0)
	checkFenced(t, ctx, e, 0, st.Primary, fx.engine == "pg")
	checkNoWrites(t, ctx, e, l, 0)
	l.stop()
	checkNoLoss(t, ctx, fx, l, newP)
	e.mon.check(t)
}

func TestChaosPGCoordinatorKilled(t *testing.T) { testCoordinatorKilled(t, startPG(t)) }
func TestChaosMyCoordinatorKilled(t *testing.T) { testCoordinatorKilled(t, startMy(t)) }

// testCoordinatorKilled (scenario 3): the coordinating instance is killed -9 in the middle of a
// failover; the other instance takes the role over and completes it. To hold the failover in its
// middle deterministically, the replicas hang (SIGSTOP) while the primary is killed: the
// coordinator publishes failing_over and then waits for the candidates to answer; the test
// kills it then and resumes the replicas.
func testCoordinatorKilled(t *testing.T, fx *fixture) {
	e := newEnv(t, fx, fastProbes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(4, 2)
	ci := e.coordinator()
	si := 1 - ci
	surv := e.b[si]
	st0 := e.mustStatus(surv)
	old := fx.name(0)
	var resumes []func()
	for i := 1; i < len(fx.nodes); i++ {
		resumes = append(resumes, hang(t, fx, i))
	}
	if err := fx.nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, surv, 30*time.Second, "failing_over seen by the surviving instance", func(s admin.ClusterStatus) bool {
		return s.Phase == "failing_over" && s.Epoch > st0.Epoch
	})
	killed := time.Now()
	e.b[ci].kill()
	for _, r := range resumes {
		r()
	}
	t.Logf("killed the coordinator %s in failing_over (epoch %d); %s survives", e.b[ci].name, st0.Epoch+1, surv.name)
	st := waitStatus(t, surv, 60*time.Second, "the surviving instance completes the failover", func(s admin.ClusterStatus) bool {
		return s.Phase == "stable" && s.Epoch > st0.Epoch && s.Primary != "" && s.Primary != old && s.Coordinator == surv.name
	})
	l.ackedAfter(t, killed, si, 30*time.Second)
	t.Logf("new primary %s in epoch %d, %v after the coordinator was killed", st.Primary, st.Epoch, time.Since(killed).Round(time.Millisecond))
	newP := fx.index(t, st.Primary)
	checkOnePrimary(t, ctx, fx, newP, 0)
	l.ackedAfter(t, time.Now(), si, 20*time.Second)
	l.stop()
	checkNoLoss(t, ctx, fx, l, newP)
	e.mon.check(t)
}

func TestChaosPGEtcdQuorum(t *testing.T) { testEtcdQuorum(t, startPG(t)) }
func TestChaosMyEtcdQuorum(t *testing.T) { testEtcdQuorum(t, startMy(t)) }

// testEtcdQuorum (scenario 4): one etcd member down changes nothing for the load; with the
// quorum lost (two of three down) nothing is promoted, reads go on, writes are refused once the
// instances' write leases lapse (after waiting in the failover buffer); with the quorum back,
// writes succeed again.
func testEtcdQuorum(t *testing.T, fx *fixture) {
	o := fastProbes
	o.bufferWindow = 2 * time.Second
	o.etcd = etcdtest.StartForTest(t, 3)
	e := newEnv(t, fx, o)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(4, 2)
	st0 := e.mustStatus(e.b[0])

	// One member down (whichever it is, possibly the raft leader): no effect.
	down := time.Now()
	if err := e.etcd.Member(0).Kill(); err != nil {
		t.Fatal(err)
	}
	for i := range e.b {
		l.ackedAfter(t, down.Add(2*leaseTTL), i, 30*time.Second)
		l.readAfter(t, down.Add(2*leaseTTL), i, 30*time.Second)
	}
	if errs := l.failures(endedAfter(down)); len(errs) > 0 {
		t.Errorf("%d client errors with one etcd member down, first: %v", len(errs), errs[0])
	}

	// Quorum lost.
	lost := time.Now()
	if err := e.etcd.Member(1).Kill(); err != nil {
		t.Fatal(err)
	}
	var firstRefused time.Time
	cluster.Eventually(t, 30*time.Second, "writes are refused without the etcd quorum", func() (bool, error) {
		errs := l.failures(func(o op) bool { return !o.read && o.start.After(lost) })
		if len(errs) > 0 {
			firstRefused = errs[0].end
			return true, nil
		}
		return false, nil
	})
	t.Logf("quorum lost: first write refused after %v: %v", firstRefused.Sub(lost).Round(time.Millisecond), l.failures(func(o op) bool { return !o.read && o.start.After(lost) })[0])
	// Reads go on well after the write leases lapsed.
	for i := range e.b {
		l.readAfter(t, lost.Add(2*leaseTTL), i, 30*time.Second)
	}
	for _, b := range e.b {
		if st, err := b.status(); err != nil || st.Epoch != st0.Epoch {
			t.Errorf("baton %s without the etcd quorum: epoch %d (was %d), %v", b.name, st.Epoch, st0.Epoch, err)
		}
	}
	restored := time.Now()
	if err := e.etcd.Restart(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("quorum back after %v", time.Since(lost).Round(time.Millisecond))

	// Writes succeed again through both instances, on the same primary, in the same epoch.
	for i := range e.b {
		l.ackedAfter(t, time.Now(), i, 30*time.Second)
	}
	e.waitAll(20*time.Second, "same primary, same epoch", func(s admin.ClusterStatus) bool {
		return s.Phase == "stable" && s.Epoch == st0.Epoch && s.Primary == fx.name(0)
	})
	checkOnePrimary(t, ctx, fx, 0, -1)
	l.stop()

	// The write lease: no write was acknowledged between the lapse of the leases and the return
	// of the quorum.
	for _, w := range l.ackedSentIn(lost, restored) {
		if w.end.After(lost.Add(leaseTTL)) && w.end.Before(restored) {
			t.Errorf("a write sent at %s through baton %d was acknowledged at %s, %v after the etcd quorum was lost",
				w.start.Format("15:04:05.000"), w.inst, w.end.Format("15:04:05.000"), w.end.Sub(lost).Round(time.Millisecond))
			break
		}
	}
	if errs := l.failures(func(o op) bool { return o.read && o.end.After(down) }); len(errs) > 0 {
		t.Errorf("%d reads failed while etcd was degraded, first: %v", len(errs), errs[0])
	}
	checkNoLoss(t, ctx, fx, l, 0)
	e.mon.check(t)
}

// TestChaosPGSwitchover and TestChaosMySwitchover: BATON_CHAOS_RUNS switchovers, each on a fresh
// cluster, for the timing table's write-pause rows.
func TestChaosPGSwitchover(t *testing.T) { switchoverRuns(t, "postgres switchover", startPG) }
func TestChaosMySwitchover(t *testing.T) { switchoverRuns(t, "mariadb switchover", startMy) }

func switchoverRuns(t *testing.T, row string, start func(*testing.T) *fixture) {
	etcd := etcdtest.StartForTest(t, 3)
	for r := range chaosRuns(t) {
		t.Run(fmt.Sprintf("run%d", r+1), func(t *testing.T) {
			recordTiming(row, testSwitchover(t, start(t), envOptions{etcd: etcd})) // baton's defaults
		})
	}
}

// testSwitchover (scenario 5): `baton switchover` under load: no client error for statements and
// transactions sent after it began; it returns the write pause.
func testSwitchover(t *testing.T, fx *fixture, o envOptions) time.Duration {
	e := newEnv(t, fx, o)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := e.startLoad(4, 2)
	st0 := e.mustStatus(e.b[0])
	began := time.Now()
	out, err := e.b[1].control(ctx, "switchover", fx.engine)
	done := time.Now()
	if err != nil {
		t.Fatalf("baton switchover: %v\n%s", err, out)
	}
	t.Logf("baton switchover (%v): %s", done.Sub(began).Round(time.Millisecond), strings.TrimSpace(out))
	st := e.waitAll(20*time.Second, "switched over", func(s admin.ClusterStatus) bool {
		return s.Phase == "stable" && s.Epoch > st0.Epoch && s.Primary != "" && s.Primary != fx.name(0)
	})
	resumed := time.Now()
	for i := range e.b {
		if at := l.ackedAfter(t, done, i, 20*time.Second); at.After(resumed) {
			resumed = at
		}
	}
	pause := l.maxGap(began, resumed)
	t.Logf("switchover write pause (longest gap between acknowledged writes): %v", pause.Round(time.Millisecond))
	newP := fx.index(t, st.Primary)
	checkOnePrimary(t, ctx, fx, newP, map[bool]int{true: 0, false: -1}[fx.engine == "pg"])
	l.ackedAfter(t, time.Now(), anyInst, 20*time.Second)
	l.stop()
	for _, o := range l.failures(endedAfter(began)) {
		t.Logf("error during the switchover: %v", o)
	}
	if errs := l.failures(startedAfter(began)); len(errs) > 0 {
		t.Errorf("%d client errors for statements sent after the switchover began, first: %v", len(errs), errs[0])
	}
	if pause > 5*time.Second {
		t.Errorf("writes paused %v in the switchover", pause)
	}
	checkNoLoss(t, ctx, fx, l, newP)
	e.mon.check(t)
	return pause
}

func TestChaosPGReplicaKilled(t *testing.T) { testReplicaKilled(t, startPG(t)) }
func TestChaosMyReplicaKilled(t *testing.T) { testReplicaKilled(t, startMy(t)) }

// testReplicaKilled (scenario 6): a replica killed -9 under read load: no client error.
func testReplicaKilled(t *testing.T, fx *fixture) {
	e := newEnv(t, fx, fastProbes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := startLoad(t, fx.dial, e.addrs(), 2, 6)
	for i := range e.b {
		l.ackedAfter(t, time.Now(), i, 20*time.Second)
		l.readAfter(t, time.Now(), i, 20*time.Second)
	}
	killed := time.Now()
	if err := fx.nodes[2].Kill(); err != nil {
		t.Fatal(err)
	}
	e.waitAll(20*time.Second, "the killed replica leaves the read set", func(s admin.ClusterStatus) bool {
		return s.Phase == "stable" && s.Primary == fx.name(0) && s.ReadableReplicas == 1
	})
	after := time.Now()
	for i := range e.b {
		l.readAfter(t, after, i, 20*time.Second)
		l.ackedAfter(t, after, i, 20*time.Second)
	}
	l.stop()
	if errs := l.failures(endedAfter(killed)); len(errs) > 0 {
		for _, o := range errs {
			t.Logf("error: %v", o)
		}
		t.Errorf("%d client errors after a replica was killed", len(errs))
	}
	checkNoLoss(t, ctx, fx, l, 0)
	e.mon.check(t)
}
