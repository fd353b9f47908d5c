package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/topology"
)

// TestTablePausedAndDiverged: baton status shows a paused failover with who, why and how to
// resume, and a diverged node with its positions and repair steps.
func TestTablePausedAndDiverged(t *testing.T) {
	doc := &admin.ClustersResponse{Clusters: []admin.ClusterStatus{{
		Name: "pg", Engine: "postgres", Listen: "127.0.0.1:6432", Primary: "pg2", Epoch: 3, Phase: "stable",
		Nodes: []admin.NodeStatus{
			{Name: "pg1", Up: true, Role: "primary", Fenced: true, Diverged: "WAL end 0/5000100 on timeline 1 is 96 bytes past the fork point 0/50000A0"},
			{Name: "pg2", Up: true, Role: "primary"},
		},
		FailoverPaused: true,
		Pause:          &topology.Pause{By: "b0", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Reason: "kernel upgrade"},
		Diverged: []topology.Divergence{{Node: "pg1", Primary: "pg2",
			Detail: "WAL end 0/5000100 on timeline 1 is 96 bytes past the fork point 0/50000A0",
			Steps:  "1. pg_ctl stop\n2. pg_rewind ..."}},
	}}}
	var b strings.Builder
	if err := admin.WriteTable(&b, doc); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"AUTOMATIC FAILOVER PAUSED by b0", "(kernel upgrade)", "baton resume --cluster pg",
		"node pg1: diverged, needs rewind: WAL end 0/5000100", "\n    2. pg_rewind ...",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "diverged") || !strings.Contains(strings.Split(out, "\n")[1], "diverged") {
		t.Errorf("pg1's STATE column is not diverged:\n%s", out)
	}
}
