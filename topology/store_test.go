package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startEtcd(t *testing.T) *EmbeddedEtcd {
	t.Helper()
	e, err := StartEmbeddedEtcd(EtcdOptions{Dir: t.TempDir(), NoFsync: true,
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Two instances share the state; an instance that goes away takes its keys with it.
func TestStoreObservationsFollowTheInstance(t *testing.T) {
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
	for _, s := range []*Store{a, b} {
		if err := s.Observe(ctx, "pg", "pg1", true); err != nil {
			t.Fatal(err)
		}
	}
	obs, err := a.Observers(ctx, "pg", "pg1")
	if err != nil || !slices.Equal(obs, []string{"a", "b"}) {
		t.Fatalf("observers %v, %v", obs, err)
	}
	if err := a.Observe(ctx, "pg", "pg1", false); err != nil {
		t.Fatal(err)
	}
	if obs, _ := b.Observers(ctx, "pg", "pg1"); !slices.Equal(obs, []string{"b"}) {
		t.Fatalf("after a's failed probe: %v", obs)
	}
	inst, _ := a.Instances(ctx)
	if !slices.Equal(inst, []string{"a", "b"}) {
		t.Fatalf("instances %v", inst)
	}
	b.Close() // b dies: its lease is revoked
	if obs, _ := a.Observers(ctx, "pg", "pg1"); len(obs) != 0 {
		t.Fatalf("observers after b left: %v", obs)
	}
	if inst, _ := a.Instances(ctx); !slices.Equal(inst, []string{"a"}) {
		t.Fatalf("instances after b left: %v", inst)
	}
}

// Only the elected coordinator writes the state, and a deposed one cannot.
func TestCoordinatorWritesAreFenced(t *testing.T) {
	e := startEtcd(t)
	ctx := ctx10(t)
	a, _ := NewStore(ctx, e.Client, "/baton", "a", 2)
	b, _ := NewStore(ctx, e.Client, "/baton", "b", 2)
	defer b.Close()
	ca, err := a.Campaign(ctx, "pg")
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := b.Leader(ctx, "pg"); l != "a" {
		t.Fatalf("leader %q, want a", l)
	}
	st := ClusterState{Epoch: 1, Primary: "pg1", Phase: PhaseStable, Since: time.Unix(1, 0).UTC()}
	if err := ca.WriteState(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, ok, err := b.State(ctx, "pg")
	if err != nil || !ok || got != st {
		t.Fatalf("state read by b: %+v %v %v", got, ok, err)
	}
	won := make(chan *Coordinator, 1)
	go func() {
		c, err := b.Campaign(ctx, "pg")
		if err == nil {
			won <- c
		}
	}()
	a.Close() // a dies mid-term: b must take over, and a's stale handle must not write
	var cb *Coordinator
	select {
	case cb = <-won:
	case <-ctx.Done():
		t.Fatal("b never became coordinator")
	}
	if err := ca.WriteState(context.Background(), ClusterState{Epoch: 99}); !errors.Is(err, ErrNotCoordinator) && err == nil {
		t.Fatalf("a deposed coordinator wrote the state (%v)", err)
	}
	if err := cb.WriteState(ctx, ClusterState{Epoch: 2, Primary: "pg2", Phase: PhaseStable}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := b.State(ctx, "pg"); got.Epoch != 2 || got.Primary != "pg2" {
		t.Fatalf("state %+v", got)
	}
}

// A session that cannot renew its lease ends: Done closes, which is the write-lease signal.
func TestStoreDoneWhenEtcdGoesAway(t *testing.T) {
	e := startEtcd(t)
	ctx := ctx10(t)
	s, err := NewStore(ctx, e.Client, "/baton", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.stopServer() // the server is gone; the client cannot keep the lease alive
	select {
	case <-s.Done():
		// The client gives a lease up only after its keep-alive attempts fail for about the
		// TTL plus retries; the write-lease rule therefore needs baton's own deadline
		// (last renewal + TTL − margin), which the issue on etcd wiring adds.
		t.Logf("session ended %v after etcd went away (TTL 1 s)", time.Since(start).Round(100*time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("session still alive 15 s after etcd went away")
	}
}
