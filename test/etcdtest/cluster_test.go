package etcdtest

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond every 20 ms until it holds; it fails the test when ctx ends first.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitLeader waits until the running members agree on a leader and returns its index.
func waitLeader(t *testing.T, ctx context.Context, c *Cluster, what string) int {
	t.Helper()
	leader := -1
	waitFor(t, ctx, what, func() bool {
		l, err := c.Leader(ctx)
		leader = l
		return err == nil && l >= 0
	})
	return leader
}

func client(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// put writes k=v with a 1 s bound.
func put(ctx context.Context, cli *clientv3.Client, k, v string) error {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := cli.Put(pctx, k, v)
	return err
}

// localGet reads k from the one member cli talks to, without asking the leader.
func localGet(ctx context.Context, cli *clientv3.Client, k string) (string, error) {
	gctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	r, err := cli.Get(gctx, k, clientv3.WithSerializable())
	if err != nil || len(r.Kvs) == 0 {
		return "", err
	}
	return string(r.Kvs[0].Value), nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// Three separate processes form one cluster on the advertised URLs; Stop leaves none behind.
func TestEtcdClusterStart(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	bin, err := Binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := Start(ctx, 3, Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 members healthy %v after the start", time.Since(start).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	eps := c.Endpoints()
	if len(eps) != 3 || len(slices.Compact(slices.Sorted(slices.Values(eps)))) != 3 {
		t.Fatalf("endpoints %v", eps)
	}
	var pids []int
	for _, m := range c.Members() {
		if m.PID() == 0 || m.PID() == os.Getpid() || slices.Contains(pids, m.PID()) {
			t.Fatalf("member %s has pid %d (others %v)", m.Name(), m.PID(), pids)
		}
		pids = append(pids, m.PID())
	}
	cli := client(t, eps...)
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ml.Members {
		got = append(got, m.ClientURLs...)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(eps))) {
		t.Fatalf("member list %v, want %v", got, eps)
	}
	if err := put(ctx, cli, "k", "v"); err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps { // replicated to every member
		one := client(t, ep)
		waitFor(t, ctx, "k on "+ep, func() bool { v, _ := localGet(ctx, one, "k"); return v == "v" })
	}
	if l, err := c.Leader(ctx); err != nil || l < 0 {
		t.Fatalf("leader %d %v", l, err)
	}
	dir := c.Dir()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("member process %d survived Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster's temporary directory %s survived Stop (%v)", dir, err)
	}
}

// Killing the leader: the other two elect a new one and keep taking writes; the killed member
// restarts from its data directory, rejoins and catches up on what it missed.
func TestMemberKillAndRestart(t *testing.T) {
	c := StartForTest(t, 3)
	ctx := testCtx(t, time.Minute)
	cli := client(t, c.Endpoints()...)
	old := waitLeader(t, ctx, c, "a leader")
	m := c.Member(old)
	pid := m.PID()
	killed := time.Now()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if m.Running() || alive(pid) {
		t.Fatal("the killed member still runs")
	}
	if err := m.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("killing a dead member: %v", err)
	}
	waitFor(t, ctx, "a put after the leader died", func() bool { return put(ctx, cli, "missed", "1") == nil })
	t.Logf("writes go on %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	if l, err := c.Leader(ctx); err != nil || l == old {
		t.Fatalf("leader %d (killed %d): %v", l, old, err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if m.PID() == pid || !strings.Contains(m.Tail(200), "(existing)") {
		t.Fatalf("restart: pid %d (was %d)\n%s", m.PID(), pid, m.Tail(20))
	}
	one := client(t, m.ClientURL())
	waitFor(t, ctx, "the restarted member to catch up", func() bool { v, _ := localGet(ctx, one, "missed"); return v == "1" })
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list after the restart: %v %v", ml, err)
	}
}

// Two of three members down: no writes, stale reads only; both back at once: writes again.
func TestQuorumLossAndRestore(t *testing.T) {
	c := StartForTest(t, 3)
	ctx := testCtx(t, time.Minute)
	cli := client(t, c.Endpoints()...)
	if err := put(ctx, cli, "before", "1"); err != nil {
		t.Fatal(err)
	}
	survivor := client(t, c.Member(0).ClientURL())
	waitFor(t, ctx, "the survivor has the key", func() bool { v, _ := localGet(ctx, survivor, "before"); return v == "1" })
	for _, i := range []int{1, 2} {
		if err := c.Member(i).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	if err := put(ctx, cli, "during", "1"); err == nil {
		t.Fatal("a put succeeded without a quorum")
	}
	if err := c.Member(0).Healthy(ctx); err == nil {
		t.Fatal("the survivor reports healthy without a quorum")
	}
	if v, err := localGet(ctx, survivor, "before"); err != nil || v != "1" {
		t.Fatalf("serializable read on the survivor: %q %v", v, err)
	}
	if err := c.Restart(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "a put after the quorum came back", func() bool { return put(ctx, cli, "after", "1") == nil })
}

// A paused leader (SIGSTOP) is replaced; resumed, it rejoins as a follower. A stopped member
// (SIGTERM) restarts too.
func TestMemberPauseAndStop(t *testing.T) {
	c := StartForTest(t, 3)
	ctx := testCtx(t, time.Minute)
	cli := client(t, c.Endpoints()...)
	old := waitLeader(t, ctx, c, "a leader")
	if err := c.Member(old).Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			c.Member(old).Resume()
		}
	}()
	waitFor(t, ctx, "a put while the leader is paused", func() bool { return put(ctx, cli, "p", "1") == nil })
	if err := c.Member(old).Healthy(ctx); err == nil {
		t.Fatal("a paused member answered its health check")
	}
	if err := c.Member(old).Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, ctx, c, "one leader again")
	m := c.Member((old + 1) % 3)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if m.Running() {
		t.Fatal("a stopped member still runs")
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}
