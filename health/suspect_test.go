package health

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// observerLog records what the checker publishes through OnObserve.
type observerLog struct {
	mu  sync.Mutex
	now map[string]bool
}

func (l *observerLog) get(node string) (bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	up, ok := l.now[node]
	return up, ok
}

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func refused() error {
	return fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
}

// TestEvidence: a refused probe is confirmed and withdrawn at once (not after
// failure_threshold rounds); a timeout needs failure_threshold rounds; an unclear error that a
// confirmation contradicts withdraws nothing; Suspect from the data path confirms too.
func TestEvidence(t *testing.T) {
	c, live, ps := scriptedCluster(t)
	cl := c.cluster.Load()
	cl.ConfirmProbes, cl.ConfirmInterval = 3, 0
	log := &observerLog{now: map[string]bool{}}
	c.OnObserve(func(ctx context.Context, node string, up bool) error {
		log.mu.Lock()
		log.now[node] = up
		log.mu.Unlock()
		return nil
	})
	up := func(rec bool) Observation { return Observation{Up: true, InRecover: rec, Streaming: rec} }
	ps["a"].set(up(false))
	ps["b"].set(up(true))
	ps["c"].set(up(true))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 5*time.Second, "a observed", func() bool { v, ok := log.get("a"); return ok && v })

	// Gone: withdrawn after one round and a confirmation.
	ps["a"].set(Observation{Err: refused()})
	c.Round(context.Background())
	waitFor(t, 2*time.Second, "a withdrawn after one refused probe", func() bool { v, _ := log.get("a"); return !v })
	if p := live.Load().PrimaryNode(); p != nil {
		t.Fatalf("primary %s after a confirmed refusal", p.Name)
	}
	ps["a"].set(up(false))
	c.Round(context.Background())
	waitFor(t, 2*time.Second, "a observed again", func() bool { v, _ := log.get("a"); return v })

	// Timeout: one round is not enough, two are.
	ps["b"].set(Observation{Err: context.DeadlineExceeded})
	c.Round(context.Background())
	time.Sleep(50 * time.Millisecond)
	if !c.Observed("b") {
		t.Fatal("b withdrawn after one timed-out probe")
	}
	c.Round(context.Background())
	waitFor(t, 2*time.Second, "b withdrawn after two timed-out probes", func() bool { v, _ := log.get("b"); return !v })
	ps["b"].set(up(true))
	c.Round(context.Background())

	// Suspect while the node answers: nothing withdrawn.
	time.Sleep(confirmCooldown)
	before := ps["c"].calls
	c.Suspect("c")
	waitFor(t, 2*time.Second, "a confirmation probe", func() bool {
		ps["c"].mu.Lock()
		defer ps["c"].mu.Unlock()
		return ps["c"].calls > before
	})
	time.Sleep(50 * time.Millisecond)
	if !c.Observed("c") {
		t.Fatal("c withdrawn although it answers")
	}
	// Suspect when the node is gone: withdrawn without any round.
	ps["c"].set(Observation{Err: refused()})
	time.Sleep(confirmCooldown)
	c.Suspect("c")
	waitFor(t, 2*time.Second, "c withdrawn after Suspect", func() bool { v, _ := log.get("c"); return !v })
}
