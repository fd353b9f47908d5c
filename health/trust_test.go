package health

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// scripted is a Prober whose answer the test sets.
type scripted struct {
	mu    sync.Mutex
	obs   Observation
	calls int
}

func (p *scripted) Probe(ctx context.Context) Observation {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.obs
}

func (p *scripted) Close() {}

func (p *scripted) set(o Observation) {
	p.mu.Lock()
	p.obs = o
	p.mu.Unlock()
}

// scriptedCluster returns a checker over cluster3 whose probers answer as set.
func scriptedCluster(t *testing.T) (*Checker, *topology.Live, map[string]*scripted) {
	t.Helper()
	cl := cluster3()
	cl.ProbeInterval = topology.Duration(time.Hour)
	cl.ProbeTimeout = topology.Duration(time.Second)
	cl.FailureThreshold = 2
	ps := map[string]*scripted{}
	var mu sync.Mutex
	for _, n := range cl.Nodes {
		ps[n.Name] = &scripted{}
	}
	live := &topology.Live{}
	c := NewChecker(cl, live, func(n *topology.Node) Prober {
		mu.Lock()
		defer mu.Unlock()
		return ps[n.Name]
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return c, live, ps
}

// TestStableStateReleasesAtOnce: a stable state naming a new primary makes it the primary of
// the snapshot published at once, although the last probe still saw it as a replica; the next
// probe decides from then on.
func TestStableStateReleasesAtOnce(t *testing.T) {
	c, live, ps := scriptedCluster(t)
	up := func(rec bool) Observation { return Observation{Up: true, InRecover: rec, Streaming: rec} }
	ps["a"].set(up(false))
	ps["b"].set(up(true))
	ps["c"].set(up(true))
	c.SetState(topology.ClusterState{Epoch: 1, Primary: "a", Phase: topology.PhaseStable})
	c.Round(context.Background())
	if p := live.Load().PrimaryNode(); p == nil || p.Name != "a" {
		t.Fatalf("primary %v, want a", p)
	}
	ps["a"].set(Observation{Err: io.EOF})
	c.SetState(topology.ClusterState{Epoch: 2, Phase: topology.PhaseFailingOver, Old: "a"})
	c.Round(context.Background()) // b still a replica in this round
	if p := live.Load().PrimaryNode(); p != nil {
		t.Fatalf("primary %s while failing over", p.Name)
	}
	c.SetState(topology.ClusterState{Epoch: 2, Primary: "b", Phase: topology.PhaseStable})
	if p := live.Load().PrimaryNode(); p == nil || p.Name != "b" {
		t.Fatalf("after the stable state: primary %v, want b at once", p)
	}
	// The next probe still sees b as a replica (the promotion was undone): no primary.
	time.Sleep(time.Millisecond)
	c.Round(context.Background())
	if p := live.Load().PrimaryNode(); p != nil {
		t.Fatalf("probe contradicts the state: primary %s, want none", p.Name)
	}
	// The probe sees it promoted: primary.
	ps["b"].set(up(false))
	c.Round(context.Background())
	if p := live.Load().PrimaryNode(); p == nil || p.Name != "b" {
		t.Fatalf("confirmed: primary %v, want b", p)
	}
	// A stable state for the same primary (a republished state) trusts nothing new.
	ps["b"].set(up(true))
	c.Round(context.Background())
	c.SetState(topology.ClusterState{Epoch: 2, Primary: "b", Phase: topology.PhaseStable, Reason: "again"})
	if p := live.Load().PrimaryNode(); p != nil {
		t.Fatalf("same epoch again: primary %s, want none", p.Name)
	}
}
