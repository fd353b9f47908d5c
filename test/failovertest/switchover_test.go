package failovertest

import (
	"context"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// switchover asks the cluster's coordinator for a switchover through etcd, as the admin API
// does, and returns the result and when the request was made.
func switchover(t *testing.T, b *batontest.Baton, to string) (topology.Result, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := time.Now()
	res, err := b.Inst.Store().Submit(ctx, b.Inst.Clusters()[0].Config.Name, topology.Request{Kind: "switchover", To: to})
	if err != nil {
		t.Fatalf("switchover: %v", err)
	}
	if !res.OK {
		t.Fatalf("switchover refused: %s", res.Error)
	}
	if res.Event != nil {
		for _, s := range res.Event.Steps {
			t.Logf("switchover step %-14s %v %s", s.Name, s.Duration.Round(time.Microsecond), s.Error)
		}
	}
	return res, started
}

// longestGap is the longest time without an acknowledged write between from and to, from the
// writers' acknowledgement times.
func (l *load) longestGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []time.Time
	for _, a := range l.ackTimes {
		if !a.Before(from) && !a.After(to) {
			ts = append(ts, a)
		}
	}
	gap, prev := time.Duration(0), from
	for _, a := range sortedTimes(ts) {
		if d := a.Sub(prev); d > gap {
			gap = d
		}
		prev = a
	}
	if d := to.Sub(prev); d > gap {
		gap = d
	}
	return gap
}

// TestPGSwitchover: a planned switchover under write load loses nothing and costs no client
// error; the write pause is logged (target ≤ 1 s).
func TestPGSwitchover(t *testing.T) {
	cluster.RequirePG(t)
	c := cluster.StartPGForTest(t, cluster.PGOptions{Fast: true})
	b := batontest.StartPGBatonForTest(t, c, nil)
	url := b.URL(c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool { return st.Epoch >= 1 && st.Primary == "pg1" })
	l := startPGLoad(t, ctx, url)
	defer l.stop()
	l.ackedAfter(t, time.Now(), 10*time.Second)

	res, started := switchover(t, b, "pg3")
	if res.Primary != "pg3" {
		t.Fatalf("switchover: primary %s, want pg3", res.Primary)
	}
	waitState(t, b, 5*time.Second, "instance follows the switchover", func(st topology.ClusterState) bool {
		return st.Primary == "pg3" && st.Phase == topology.PhaseStable
	})
	l.ackedAfter(t, time.Now(), 10*time.Second)
	done := time.Now()
	l.stop()
	if errs := l.errorsSince(started); len(errs) > 0 {
		t.Errorf("%d client errors during the switchover; first: %v", len(errs), errs[0].err)
	}
	gap := l.longestGap(started, done)
	t.Logf("switchover pg1 → pg3: write pause %v (longest gap between acknowledged writes)", gap.Round(time.Millisecond))

	// Zero loss: every acknowledged write is on the new primary, which is pg3.
	newP := c.Replicas[1]
	if rec, err := pgQueryInt(ctx, newP.SuperURL(), "SELECT pg_is_in_recovery()::int"); err != nil || rec != 0 {
		t.Fatalf("pg3 after the switchover: in recovery %d, %v", rec, err)
	}
	if ro, err := pgQueryInt(ctx, c.Primary.SuperURL(), "SELECT (current_setting('default_transaction_read_only') = 'on')::int"); err != nil || ro != 1 {
		t.Errorf("the old primary is not fenced: %d, %v", ro, err)
	}
	assertAllAcked(t, ctx, l, newP.SuperURL())
}
