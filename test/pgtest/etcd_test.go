package pgtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// TestSharedStateInEtcd: a baton with no etcd endpoints runs an embedded etcd; a second baton
// pointed at it shares the state. Each instance's observer keys follow its probes, and an
// instance that stops disappears with its keys.
func TestSharedStateInEtcd(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	a := batontest.StartPGBatonForTest(t, c, nil)
	urls := a.Inst.EtcdURLs()
	if len(urls) != 1 {
		t.Fatalf("embedded etcd URLs %v", urls)
	}
	cfgB, err := batontest.PGConfig(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfgB.Etcd.Endpoints = urls
	b, err := batontest.StartBaton(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sa, sb := a.Inst.Store(), b.Inst.Store()
	waitFor(t, ctx, "both instances registered", func() bool {
		inst, err := sa.Instances(ctx)
		return err == nil && len(inst) == 2 && slices.Contains(inst, sb.Instance())
	})
	waitFor(t, ctx, "both instances observe every node", func() bool {
		for _, n := range []string{"pg1", "pg2", "pg3"} {
			obs, err := sa.Observers(ctx, "pg", n)
			if err != nil || len(obs) != 2 {
				return false
			}
		}
		return true
	})
	if err := c.Replicas[1].Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the killed node's observer keys vanish", func() bool {
		obs, err := sb.Observers(ctx, "pg", "pg3")
		return err == nil && len(obs) == 0
	})
	if obs, _ := sb.Observers(ctx, "pg", "pg1"); len(obs) != 2 {
		t.Fatalf("observers of the primary: %v", obs)
	}
	b.Stop()
	var inst, obs []string
	waitFor(t, ctx, "the stopped instance and its keys vanish", func() bool {
		inst, _ = sa.Instances(ctx)
		obs, _ = sa.Observers(ctx, "pg", "pg1")
		if len(inst) == 1 && inst[0] == sa.Instance() && len(obs) == 1 {
			return true
		}
		t.Logf("instances %v observers of pg1 %v", inst, obs)
		return false
	})
}

// TestWriteLease: a baton that loses etcd stops sending writes before its lease can expire
// (so no failover elsewhere can overlap them), while reads go on.
func TestWriteLease(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	port := func() string {
		p, err := cluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	e, err := topology.StartEmbeddedEtcd(topology.EtcdOptions{Dir: t.TempDir(), ClientURL: port(), PeerURL: port(), NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cfg, err := batontest.PGConfig(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// baton reaches etcd through a forwarder the test can cut.
	fw := newForwarder(t, strings.TrimPrefix(e.URL, "http://"))
	cfg.Etcd.Endpoints = []string{"http://" + fw.addr()}
	cfg.Etcd.LeaseTTL = topology.Duration(2 * time.Second)
	// Writes without the lease wait in the failover buffer first (DESIGN §3: buffer, then
	// error); a short window makes the refusal come within the TTL.
	cfg.Clusters[0].Buffer.Window = topology.Duration(300 * time.Millisecond)
	inst, err := batontest.StartBaton(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, inst.URL(c))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE lease_t (x int)"); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	fw.cut() // the instance is cut off etcd
	var refusedAfter time.Duration
	waitFor(t, ctx, "writes refused", func() bool {
		_, err := conn.Exec(ctx, "INSERT INTO lease_t VALUES (1)")
		if err != nil {
			if !strings.Contains(err.Error(), "etcd") || !strings.Contains(err.Error(), "57P03") {
				t.Fatalf("write refused with %v", err)
			}
			refusedAfter = time.Since(lost)
			return true
		}
		return false
	})
	if refusedAfter > 2*time.Second {
		t.Fatalf("writes went on for %v after etcd was cut off; the lease TTL is 2 s", refusedAfter)
	}
	t.Logf("writes refused %v after etcd was cut off (lease TTL 2 s)", refusedAfter.Round(10*time.Millisecond))
	var rep bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rep); err != nil || !rep {
		t.Fatalf("a read after losing etcd: replica=%v %v", rep, err)
	}
}

// forwarder relays TCP to target until cut, which closes the listener and every connection.
type forwarder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln}
	t.Cleanup(f.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, b)
			f.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) cut() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}
