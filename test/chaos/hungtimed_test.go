package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/etcdtest"
)

// TestChaosPGHungTimed and TestChaosMyHungTimed: the hung-primary scenario (every process of
// the primary SIGSTOPped) with baton's default failover settings, BATON_CHAOS_RUNS times, for
// the timing table ("postgres hung", "mariadb hung"): only timeouts tell baton, the weak
// evidence.
func TestChaosPGHungTimed(t *testing.T) { testHungTimed(t, "postgres hung", startPG) }
func TestChaosMyHungTimed(t *testing.T) { testHungTimed(t, "mariadb hung", startMy) }

func testHungTimed(t *testing.T, row string, start func(*testing.T) *fixture) {
	etcd := etcdtest.StartForTest(t, 3)
	for r := range chaosRuns(t) {
		t.Run(fmt.Sprintf("run%d", r+1), func(t *testing.T) {
			fx := start(t)
			e := newEnv(t, fx, envOptions{etcd: etcd})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			l := e.startLoad(4, 2)
			st0 := e.mustStatus(e.b[0])
			old := fx.name(0)
			resume := hang(t, fx, 0)
			// The clock starts when every thread of the server is stopped.
			if !waitStopped(fx.nodes[0].PID(), time.Second) {
				t.Fatalf("%s is not stopped 1 s after SIGSTOP", old)
			}
			stopped := time.Now()
			took := l.ackedAfter(t, stopped, anyInst, 60*time.Second).Sub(stopped)
			st := e.waitAll(30*time.Second, "one new primary published", func(s admin.ClusterStatus) bool {
				return s.Phase == "stable" && s.Epoch > st0.Epoch && s.Primary != "" && s.Primary != old
			})
			t.Logf("SIGSTOP of %s → first acknowledged write: %v; new primary %s", old, took.Round(time.Millisecond), st.Primary)
			recordTiming(row, took)
			resume()
			for i := range e.b {
				l.ackedAfter(t, stopped, i, 30*time.Second)
			}
			newP := fx.index(t, st.Primary)
			checkOnePrimary(t, ctx, fx, newP, 0)
			checkFenced(t, ctx, e, 0, st.Primary, fx.engine == "pg")
			logSteps(t, e)
			l.stop()
			checkNoLoss(t, ctx, fx, l, newP)
			e.mon.check(t)
		})
	}
}

// logSteps logs the steps of the cluster's last failover (from the history).
func logSteps(t *testing.T, e *env) {
	t.Helper()
	st, err := e.b[0].status()
	if err != nil || len(st.History) == 0 {
		return
	}
	ev := st.History[len(st.History)-1]
	line := ""
	for _, s := range ev.Steps {
		line += fmt.Sprintf(" %s=%v", s.Name, s.Duration.Round(time.Millisecond))
	}
	t.Logf("%s epoch %d steps:%s", ev.Kind, ev.Epoch, line)
}

// TestChaosPGShortStall and TestChaosMyShortStall: the primary stalls for 300 ms (SIGSTOP,
// SIGCONT) under load, with baton's default settings: that is not a dead primary. No failover,
// and no client error (statements wait out the stall).
func TestChaosPGShortStall(t *testing.T) { testShortStall(t, startPG(t)) }
func TestChaosMyShortStall(t *testing.T) { testShortStall(t, startMy(t)) }

func testShortStall(t *testing.T, fx *fixture) {
	e := newEnv(t, fx, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := e.startLoad(4, 2)
	st0 := e.mustStatus(e.b[0])
	began := time.Now()
	for range 3 {
		resume := hang(t, fx, 0)
		stalled := time.Now()
		time.Sleep(300 * time.Millisecond)
		resume()
		for i := range e.b {
			l.ackedAfter(t, stalled.Add(300*time.Millisecond), i, 10*time.Second)
		}
		time.Sleep(time.Second)
	}
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		for _, b := range e.b {
			if st, err := b.status(); err == nil && (st.Epoch != st0.Epoch || st.Primary != fx.name(0)) {
				t.Fatalf("a 300 ms stall of the primary failed it over: %s: epoch %d → %d, primary %s", b.name, st0.Epoch, st.Epoch, st.Primary)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.stop()
	if errs := l.failures(endedAfter(began)); len(errs) > 0 {
		for _, o := range errs {
			t.Logf("error: %v", o)
		}
		t.Errorf("%d client errors with three 300 ms stalls of the primary", len(errs))
	}
	checkNoLoss(t, ctx, fx, l, 0)
	e.mon.check(t)
}
