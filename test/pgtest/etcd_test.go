package pgtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
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
