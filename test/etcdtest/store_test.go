package etcdtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Store outlives the loss of its session: while etcd has no quorum the session's lease is
// lost (Done closes, MayWrite is false, no campaign); once the quorum is back the Store opens a
// new session, registers the instance and its observer keys again, revokes the old lease (a
// coordinator elected with it is deposed), and only then may write again.
func TestMemberQuorumLossRenewsStoreSession(t *testing.T) {
	c := StartForTest(t, 3)
	ctx := testCtx(t, 50*time.Second)
	cli := client(t, c.Endpoints()...)
	const ttl = 2
	s, err := topology.NewStore(ctx, cli, "/baton", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Observe(ctx, "pg", "pg1", true); err != nil {
		t.Fatal(err)
	}
	co, err := s.Campaign(ctx, "pg")
	if err != nil {
		t.Fatal(err)
	}
	oldLease := leaseOf(t, ctx, cli, "/baton/instances/a")
	done := s.Done()
	if !s.MayWrite() {
		t.Fatal("MayWrite is false with a live session")
	}
	if err := c.Member(1).Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Member(2).Kill(); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the session outlived the quorum")
	}
	t.Logf("session ended %v after the quorum was lost (TTL %d s)", time.Since(lost).Round(10*time.Millisecond), ttl)
	if s.MayWrite() {
		t.Fatal("MayWrite is true with an ended session")
	}
	if _, err := s.Campaign(ctx, "pg"); !errors.Is(err, topology.ErrStoreClosed) {
		t.Fatalf("a campaign without a session: %v", err)
	}
	// Not even a long wait brings the old session back, nor MayWrite.
	for range 20 {
		if s.MayWrite() {
			t.Fatal("MayWrite turned true without a quorum")
		}
		time.Sleep(50 * time.Millisecond) // sampling a condition that must NOT change
	}
	restored := time.Now()
	if err := c.Restart(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "MayWrite after the quorum came back", s.MayWrite)
	t.Logf("MayWrite true again %v after the quorum was restored", time.Since(restored).Round(10*time.Millisecond))
	// MayWrite turns true only after the new session registered everything.
	newLease := leaseOf(t, ctx, cli, "/baton/instances/a")
	if newLease == oldLease || newLease == clientv3.NoLease {
		t.Fatalf("the instance key has lease %x (old %x)", newLease, oldLease)
	}
	if l := leaseOf(t, ctx, cli, "/baton/pg/observers/pg1/a"); l != newLease {
		t.Fatalf("the observer key has lease %x, want the new session's %x", l, newLease)
	}
	if inst, err := s.Instances(ctx); err != nil || !slices.Equal(inst, []string{"a"}) {
		t.Fatalf("instances %v %v", inst, err)
	}
	if ttlResp, err := cli.TimeToLive(ctx, oldLease); err != nil || ttlResp.TTL != -1 {
		t.Fatalf("the old lease is still there: %+v %v", ttlResp, err)
	}
	if err := co.WriteState(ctx, topology.ClusterState{Epoch: 1}); !errors.Is(err, topology.ErrNotCoordinator) {
		t.Fatalf("the coordinator of the lost session wrote: %v", err)
	}
	select {
	case <-s.Done():
		t.Fatal("the new session is done")
	default:
	}
	co2, err := s.Campaign(ctx, "pg")
	if err != nil {
		t.Fatal(err)
	}
	if err := co2.WriteState(ctx, topology.ClusterState{Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	// Close revokes the new lease: every key of the instance goes at once.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := cli.Get(ctx, "/baton/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range r.Kvs {
		if string(kv.Key) != "/baton/pg/state" {
			t.Errorf("key %s survived Close", kv.Key)
		}
	}
}

// leaseOf returns the lease key k is attached to.
func leaseOf(t *testing.T, ctx context.Context, cli *clientv3.Client, k string) clientv3.LeaseID {
	t.Helper()
	r, err := cli.Get(ctx, k)
	if err != nil || len(r.Kvs) != 1 {
		t.Fatalf("get %s: %v %v", k, r, err)
	}
	return clientv3.LeaseID(r.Kvs[0].Lease)
}
