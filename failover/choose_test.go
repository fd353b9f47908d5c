package failover

import (
	"testing"

	"github.com/baton-proxy/baton/topology"
)

func TestChoose(t *testing.T) {
	node := func(name string, prio int, noPromote bool) *topology.Node {
		return &topology.Node{Name: name, Address: "127.0.0.1:1", Priority: prio, NoPromote: noPromote}
	}
	a, b, c, d := node("a", 0, false), node("b", 0, false), node("c", 5, false), node("d", 0, true)
	cl := &topology.Cluster{Name: "x", Engine: topology.EnginePostgres, Nodes: []*topology.Node{a, b, c, d}}
	m := &Manager{eng: NewPG(cl)}
	rep := func(n *topology.Node, recv string, sync bool) candidate {
		return candidate{node: n, info: NodeInfo{InRecovery: true, Received: recv}, sync: sync}
	}
	tests := []struct {
		name  string
		cands []candidate
		to    string
		want  string
		err   bool
	}{
		{"highest received wins", []candidate{rep(a, "0/100", false), rep(b, "0/200", false)}, "", "b", false},
		{"sync standby before position", []candidate{rep(a, "0/100", true), rep(b, "0/200", false)}, "", "a", false},
		{"priority breaks ties", []candidate{rep(a, "0/200", false), rep(c, "0/200", false)}, "", "c", false},
		{"configuration order last", []candidate{rep(b, "0/200", false), rep(a, "0/200", false)}, "", "a", false},
		{"no_promote skipped", []candidate{rep(d, "0/900", false), rep(a, "0/100", false)}, "", "a", false},
		{"no_promote honoured for --to", []candidate{rep(d, "0/900", false), rep(a, "0/100", false)}, "d", "d", false},
		{"--to names the node", []candidate{rep(a, "0/100", false), rep(b, "0/200", false)}, "a", "a", false},
		{"a writable node is no candidate", []candidate{{node: a, info: NodeInfo{Writable: true, Received: "0/900"}}, rep(b, "0/100", false)}, "", "b", false},
		{"nothing promotable", []candidate{rep(d, "0/900", false)}, "", "", true},
		{"--to not reachable", []candidate{rep(a, "0/100", false)}, "b", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.choose(cl, tt.cands, tt.to)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err == nil && got.node.Name != tt.want {
				t.Fatalf("chose %s, want %s", got.node.Name, tt.want)
			}
		})
	}
}
