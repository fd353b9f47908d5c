package health

import (
	"errors"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

func cluster3() *topology.Cluster {
	zero := 0
	return &topology.Cluster{Name: "c", Nodes: []*topology.Node{
		{Name: "a", Address: "127.0.0.1:1"},
		{Name: "b", Address: "127.0.0.1:2"},
		{Name: "c", Address: "127.0.0.1:3", Weight: &zero},
	}}
}

func TestBuild(t *testing.T) {
	up := func(rec bool) Observation { return Observation{Up: true, InRecover: rec, Streaming: rec} }
	down := Observation{Err: errors.New("connection refused")}
	cl := cluster3()
	tests := []struct {
		name        string
		prevPrimary string
		obs         []Observation
		wantPrimary string
		wantRead    []string
	}{
		{"normal", "", []Observation{up(false), up(true), up(true)}, "a", []string{"b"}}, // c has weight 0
		{"replica down", "a", []Observation{up(false), down, up(true)}, "a", nil},
		{"primary down", "a", []Observation{down, up(true), up(true)}, "", []string{"b"}},
		{"promoted elsewhere", "a", []Observation{down, up(false), up(true)}, "b", nil},
		{"two claim, previous kept", "a", []Observation{up(false), up(false), up(true)}, "a", nil},
		{"two claim, no previous", "", []Observation{up(false), up(false), up(true)}, "", nil},
		{"all down", "a", []Observation{down, down, down}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev *topology.Snapshot
			if tt.prevPrimary != "" {
				prev = &topology.Snapshot{Primary: 0, Nodes: []topology.NodeState{{Name: tt.prevPrimary}}}
			}
			s := Build(cl, prev, tt.obs, time.Unix(0, 0))
			got := ""
			if p := s.PrimaryNode(); p != nil {
				got = p.Name
			}
			if got != tt.wantPrimary {
				t.Fatalf("primary %q, want %q", got, tt.wantPrimary)
			}
			var read []string
			for _, i := range s.Readable {
				read = append(read, s.Nodes[i].Name)
			}
			if len(read) != len(tt.wantRead) || (len(read) > 0 && read[0] != tt.wantRead[0]) {
				t.Fatalf("readable %v, want %v", read, tt.wantRead)
			}
			for i, o := range tt.obs {
				if o.Err != nil && s.Nodes[i].LastErr == "" {
					t.Fatalf("node %s: error not recorded", s.Nodes[i].Name)
				}
			}
		})
	}
}

func TestBuildDrainedReplicaNotReadable(t *testing.T) {
	cl := cluster3()
	cl.Nodes[1].Drain = true
	s := Build(cl, nil, []Observation{{Up: true}, {Up: true, InRecover: true}, {Up: true, InRecover: true}}, time.Now())
	if len(s.Readable) != 0 {
		t.Fatalf("drained/weight-0 replicas readable: %v", s.Readable)
	}
}

// While no node takes writes, replicas that were readable stay readable (nothing newer can
// exist); a replica that was not readable does not become readable.
func TestReplicasServeReadsWhileThePrimaryIsAway(t *testing.T) {
	cl := cluster3()
	one := 1
	cl.Nodes[2].Weight = &one
	cl.MaxLag = topology.Duration(time.Second)
	prev := &topology.Snapshot{Primary: 0, Readable: []int{1}, Nodes: []topology.NodeState{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	down := Observation{Err: errors.New("connection refused")}
	replica := Observation{Up: true, InRecover: true} // not streaming: its primary is gone
	s := Build(cl, prev, []Observation{down, replica, replica}, time.Now())
	if s.PrimaryNode() != nil {
		t.Fatal("a primary while every node is down or in recovery")
	}
	if len(s.Readable) != 1 || s.Nodes[s.Readable[0]].Name != "b" {
		t.Fatalf("readable %v; want only b (readable before), not c", s.Readable)
	}
}
