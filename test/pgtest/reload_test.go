package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// TestLiveReload changes a running baton's configuration: draining a replica, then removing the
// other one, takes them out of the read set without dropping the open session; a change that
// needs a restart is refused and the running configuration stays.
func TestLiveReload(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, b.URL(pg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, rep := where(t, c, ctx, ""); !rep {
		t.Fatal("the first read did not go to a replica")
	}
	cfg, err := batontest.PGConfig(pg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[0]
	cl.Listen = b.Cfg.Clusters[0].Listen
	live := b.Inst.Clusters()[0].Live
	readable := func() map[string]bool {
		out := map[string]bool{}
		s := live.Load()
		for _, i := range s.Readable {
			out[s.Nodes[i].Address] = true
		}
		return out
	}
	drained, other := pg.Replicas[0], pg.Replicas[1]
	cl.Nodes[1].Drain = true // pg2 is replica1
	if err := b.Inst.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the drained replica leaves the read set", func() bool { return !readable()[drained.Addr()] })
	for range 30 {
		if port, _ := where(t, c, ctx, ""); port == drained.Port {
			t.Fatal("a read went to the drained replica (over the session opened before the reload)")
		}
	}

	// Remove the other replica: reads fall back to the primary; the session lives on.
	cfg2, _ := batontest.PGConfig(pg, nil)
	cfg2.Clusters[0].Listen = cl.Listen
	cfg2.Clusters[0].Nodes = []*topology.Node{cfg2.Clusters[0].Nodes[0], cfg2.Clusters[0].Nodes[1]}
	cfg2.Clusters[0].Nodes[1].Drain = true
	if err := b.Inst.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the removed replica leaves the read set", func() bool { return !readable()[other.Addr()] })
	for range 10 {
		if port, rep := where(t, c, ctx, ""); rep || port != pg.Primary.Port {
			t.Fatalf("with no readable replica a read ran on %d", port)
		}
	}

	// A change that needs a restart is refused whole.
	bad, _ := batontest.PGConfig(pg, nil)
	if err := b.Inst.Reload(bad); err == nil {
		t.Fatal("a reload that moves the listener was accepted")
	}
	if port, _ := where(t, c, ctx, ""); port != pg.Primary.Port {
		t.Fatalf("after a refused reload the old configuration no longer applies (read on %d)", port)
	}
}
