package failover

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

func loopbackURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("http://%s", l.Addr())
}

// TestWaitAcksOnlyMembers: a failover of cluster pg waits for the acknowledgements of the
// instances serving pg, not for an instance that serves only another cluster (seen: a 10.6 s
// PostgreSQL failover while an instance serving only a MySQL cluster had joined the etcd).
func TestWaitAcksOnlyMembers(t *testing.T) {
	e, err := topology.StartEmbeddedEtcd(topology.EtcdOptions{Dir: t.TempDir(), NoFsync: true,
		ClientURL: loopbackURL(t), PeerURL: loopbackURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := topology.NewStore(ctx, e.Client, "/baton", "a", 5)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := topology.NewStore(ctx, e.Client, "/baton", "b", 5)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Serve(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(ctx, "my"); err != nil {
		t.Fatal(err)
	}
	m := NewManager(func() *topology.Cluster { return &topology.Cluster{Name: "pg"} }, &topology.Live{}, a, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := a.Ack(ctx, "pg", 5); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.waitAcks(ctx, "pg", 5, 3*time.Second); err != nil {
		t.Fatalf("waitAcks: %v (after %v)", err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("waitAcks took %v", d)
	}
	// A member that has not acknowledged is waited for.
	if err := b.Serve(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	if err := m.waitAcks(ctx, "pg", 5, 300*time.Millisecond); err == nil {
		t.Fatal("waitAcks returned without b's acknowledgement")
	}
	if err := b.Ack(ctx, "pg", 5); err != nil {
		t.Fatal(err)
	}
	if err := m.waitAcks(ctx, "pg", 5, 3*time.Second); err != nil {
		t.Fatal(err)
	}
}
