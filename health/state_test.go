package health

import (
	"errors"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// TestBuildState: with a shared state, only the epoch's primary takes writes, and only in a
// stable phase; other claimants are fenced; replicas keep serving reads while writes wait.
func TestBuildState(t *testing.T) {
	up := func(rec bool) Observation { return Observation{Up: true, InRecover: rec, Streaming: rec} }
	down := Observation{Err: errors.New("connection refused")}
	cl := cluster3()
	st := func(primary string, ph topology.Phase) *topology.ClusterState {
		return &topology.ClusterState{Epoch: 7, Primary: primary, Phase: ph}
	}
	tests := []struct {
		name        string
		st          *topology.ClusterState
		obs         []Observation
		wantPrimary string
		wantFenced  []string
	}{
		{"stable, epoch primary answers", st("a", topology.PhaseStable), []Observation{up(false), up(true), up(true)}, "a", nil},
		{"old primary back after failover", st("b", topology.PhaseStable), []Observation{up(false), up(false), up(true)}, "b", []string{"a"}},
		{"epoch primary is down", st("b", topology.PhaseStable), []Observation{up(false), down, up(true)}, "", []string{"a"}},
		{"epoch primary is a replica", st("b", topology.PhaseStable), []Observation{up(false), up(true), up(true)}, "", []string{"a"}},
		{"failing over", &topology.ClusterState{Epoch: 8, Phase: topology.PhaseFailingOver, Old: "a"}, []Observation{down, up(true), up(true)}, "", nil},
		{"switching over holds writes", st("a", topology.PhaseSwitchingOver), []Observation{up(false), up(true), up(true)}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := BuildState(cl, nil, []Observation{up(false), up(true), up(true)}, time.Now(), nil)
			s := BuildState(cl, prev, tt.obs, time.Now(), tt.st)
			got := ""
			if p := s.PrimaryNode(); p != nil {
				got = p.Name
			}
			if got != tt.wantPrimary {
				t.Errorf("primary %q, want %q", got, tt.wantPrimary)
			}
			var fenced []string
			for _, n := range s.Nodes {
				if n.Fenced {
					fenced = append(fenced, n.Name)
				}
			}
			if len(fenced) != len(tt.wantFenced) || (len(fenced) > 0 && fenced[0] != tt.wantFenced[0]) {
				t.Errorf("fenced %v, want %v", fenced, tt.wantFenced)
			}
			if s.Epoch != tt.st.Epoch || s.Phase != tt.st.Phase {
				t.Errorf("epoch/phase %d/%s, want %d/%s", s.Epoch, s.Phase, tt.st.Epoch, tt.st.Phase)
			}
			// b streams and was readable: it keeps serving reads whatever the phase, unless it
			// is the primary.
			if got != "b" && tt.obs[1].Up && tt.obs[1].InRecover {
				found := false
				for _, i := range s.Readable {
					found = found || s.Nodes[i].Name == "b"
				}
				if !found {
					t.Errorf("replica b left the read set: %+v", s.Nodes[1])
				}
			}
		})
	}
}
