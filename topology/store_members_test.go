package topology

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// Members are per cluster; a pause outlives the instance that set it and every instance
// sees it (watch); divergence keys are listed.
func TestStoreMembersPauseDiverged(t *testing.T) {
	e := startEtcd(t)
	ctx := ctx10(t)
	a, err := NewStore(ctx, e.Client, "/baton", "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewStore(ctx, e.Client, "/baton", "b", 2)
	if err != nil {
		t.Fatal(err)
	}
	a.Serve(ctx, "pg")
	b.Serve(ctx, "my")
	if m, err := a.Members(ctx, "pg"); err != nil || !slices.Equal(m, []string{"a"}) {
		t.Fatalf("members of pg: %v %v", m, err)
	}

	var mu sync.Mutex
	seen := []bool{}
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.WatchPaused(wctx, "pg", func(p Pause, ok bool) {
			mu.Lock()
			seen = append(seen, ok)
			mu.Unlock()
		})
	}()
	for first := false; !first; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		first = len(seen) > 0
		mu.Unlock()
	}
	if err := b.SetPaused(ctx, "pg", &Pause{By: "b", Since: time.Now(), Reason: "restart"}); err != nil {
		t.Fatal(err)
	}
	b.Close() // the pause outlives b
	p, ok, err := a.Paused(ctx, "pg")
	if err != nil || !ok || p.By != "b" || p.Reason != "restart" {
		t.Fatalf("paused: %+v %v %v", p, ok, err)
	}
	if err := a.SetPaused(ctx, "pg", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Paused(ctx, "pg"); ok {
		t.Fatal("still paused after resume")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(seen)
		mu.Unlock()
		if slices.Equal(got, []bool{false, true, false}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch saw %v, want [false true false]", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wcancel()
	<-done

	co, err := a.Campaign(ctx, "pg")
	if err != nil {
		t.Fatal(err)
	}
	if err := co.SetDiverged(ctx, "pg1", &Divergence{Node: "pg1", Primary: "pg2", Detail: "x", Steps: "y"}); err != nil {
		t.Fatal(err)
	}
	if d, err := a.Diverged(ctx, "pg"); err != nil || len(d) != 1 || d[0].Node != "pg1" {
		t.Fatalf("diverged: %+v %v", d, err)
	}
	if err := co.SetDiverged(ctx, "pg1", nil); err != nil {
		t.Fatal(err)
	}
	if d, _ := a.Diverged(ctx, "pg"); len(d) != 0 {
		t.Fatalf("diverged after clearing: %+v", d)
	}
}
