package router

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

func snap3(primary int, readable ...int) *topology.Snapshot {
	s := &topology.Snapshot{Primary: primary, Readable: readable, Nodes: []topology.NodeState{
		{Name: "p", Weight: 1}, {Name: "r1", Weight: 1}, {Name: "r2", Weight: 3},
	}}
	return s
}

func TestPlace(t *testing.T) {
	read := Class{Route: Replica}
	write := Class{Route: Primary}
	first := func(int) int { return 0 }
	last := func(n int) int { return n - 1 }
	tests := []struct {
		name      string
		snap      *topology.Snapshot
		c         Class
		p         Placement
		rnd       func(int) int
		wantNode  string
		wantRoute Route
		wantOK    bool
	}{
		{"read to replica by weight (low draw)", snap3(0, 1, 2), read, Placement{}, first, "r1", Replica, true},
		{"read to replica by weight (high draw)", snap3(0, 1, 2), read, Placement{}, last, "r2", Replica, true},
		{"sticky replica kept", snap3(0, 1, 2), read, Placement{Sticky: "r2"}, first, "r2", Replica, true},
		{"sticky but no longer readable", snap3(0, 1), read, Placement{Sticky: "r2"}, last, "r1", Replica, true},
		{"avoided replica skipped", snap3(0, 1, 2), read, Placement{Avoid: func(n string) bool { return n == "r1" }}, first, "r2", Replica, true},
		{"all avoided: primary", snap3(0, 1), read, Placement{Avoid: func(string) bool { return true }}, first, "p", Primary, true},
		{"no readable replica: primary", snap3(0), read, Placement{}, first, "p", Primary, true},
		{"write to primary", snap3(0, 1, 2), write, Placement{}, first, "p", Primary, true},
		{"write with no primary", snap3(-1, 1, 2), write, Placement{}, first, "", Primary, false},
		{"read with no primary still served", snap3(-1, 1, 2), read, Placement{}, first, "r1", Replica, true},
		{"pinned read: primary", snap3(0, 1, 2), read, Placement{Pinned: true}, first, "p", Primary, true},
		{"consistency primary", snap3(0, 1, 2), read, Placement{Consistency: topology.PrimaryOnly}, first, "p", Primary, true},
		{"state full", snap3(0, 1, 2), read, Placement{StateFull: true}, first, "p", Primary, true},
		{"replica hint beats consistency", snap3(0, 1, 2), Class{Route: Replica, Hint: true}, Placement{Consistency: topology.PrimaryOnly}, first, "r1", Replica, true},
		{"replica hint loses to a pin", snap3(0, 1, 2), Class{Route: Replica, Hint: true}, Placement{Pinned: true}, first, "p", Primary, true},
		{"begin read only on replica", snap3(0, 1, 2), Class{Route: Replica, Tx: TxBeginReadOnly}, Placement{}, first, "r1", Replica, true},
		{"begin read only, primary-only class", snap3(0, 1, 2), Class{Route: Primary, Tx: TxBeginReadOnly}, Placement{}, first, "r1", Replica, true},
		{"begin on primary", snap3(0, 1, 2), Class{Route: Replica, Tx: TxBegin}, Placement{}, first, "p", Primary, true},
		{"nil snapshot", nil, read, Placement{}, first, "", Primary, false},
		{"primary weight: low draw a replica", snap3(0, 1, 2), read, Placement{PrimaryWeight: 1}, first, "r1", Replica, true},
		{"primary weight: high draw the primary", snap3(0, 1, 2), read, Placement{PrimaryWeight: 1}, last, "p", Primary, true},
		{"primary weight: sticky primary kept", snap3(0, 1, 2), read, Placement{PrimaryWeight: 1, Sticky: "p"}, first, "p", Primary, true},
		{"primary weight: sticky replica kept", snap3(0, 1, 2), read, Placement{PrimaryWeight: 1, Sticky: "r2"}, last, "r2", Replica, true},
		{"no primary weight: sticky primary ignored", snap3(0, 1, 2), read, Placement{Sticky: "p"}, first, "r1", Replica, true},
		{"primary weight: replicas behind, primary read", snap3(0, 1, 2), read, Placement{PrimaryWeight: 1, Avoid: func(n string) bool { return n != "p" }}, first, "p", Primary, true},
		{"primary weight: avoided primary not drawn", snap3(0, 1, 2), read, Placement{PrimaryWeight: 1, Avoid: func(n string) bool { return n == "p" }}, last, "r2", Replica, true},
		{"primary weight: no replica", snap3(0), read, Placement{PrimaryWeight: 2}, last, "p", Primary, true},
		{"primary weight: no primary", snap3(-1, 1, 2), read, Placement{PrimaryWeight: 1}, last, "r2", Replica, true},
		{"primary weight: pinned", snap3(0, 1, 2), read, Placement{PrimaryWeight: 1, Pinned: true}, first, "p", Primary, true},
		{"primary weight: write", snap3(0, 1, 2), write, Placement{PrimaryWeight: 1}, first, "p", Primary, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, r, ok := Place(tt.snap, tt.c, tt.p, tt.rnd)
			if n != tt.wantNode || r != tt.wantRoute || ok != tt.wantOK {
				t.Fatalf("Place = %q %v %v; want %q %v %v", n, r, ok, tt.wantNode, tt.wantRoute, tt.wantOK)
			}
		})
	}
}

func TestPickReplicaWeights(t *testing.T) {
	s := snap3(0, 1, 2) // r1 weight 1, r2 weight 3
	counts := map[string]int{}
	for i := 0; i < 4; i++ {
		counts[PickReplica(s, "", nil, func(int) int { return i })]++
	}
	if counts["r1"] != 1 || counts["r2"] != 3 {
		t.Fatalf("draws 0..3 gave %v; want r1×1 r2×3", counts)
	}
}

// With primary_read_weight the primary is drawn beside the replicas by weight; with 0 never.
func TestPlacePrimaryWeight(t *testing.T) {
	read := Class{Route: Replica}
	for _, tt := range []struct {
		weight int
		want   map[string]int // node → draws out of total
	}{
		{0, map[string]int{"r1": 1, "r2": 3}},
		{1, map[string]int{"r1": 1, "r2": 3, "p": 1}},
		{4, map[string]int{"r1": 1, "r2": 3, "p": 4}},
	} {
		total := 0
		for _, n := range tt.want {
			total += n
		}
		got := map[string]int{}
		for d := 0; d < total; d++ {
			node, route, ok := Place(snap3(0, 1, 2), read, Placement{PrimaryWeight: tt.weight, Consistency: topology.Eventual},
				func(n int) int {
					if n != total {
						t.Fatalf("weight %d: drawn from %d, want %d", tt.weight, n, total)
					}
					return d
				})
			if !ok || (route == Primary) != (node == "p") {
				t.Fatalf("weight %d draw %d: %q %v %v", tt.weight, d, node, route, ok)
			}
			got[node]++
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("primary_read_weight %d: draws gave %v, want %v", tt.weight, got, tt.want)
		}
		// A drained primary takes no reads.
		s := snap3(0, 1, 2)
		s.Nodes[0].Drain = true
		for d := 0; d < 4; d++ {
			if node, _, _ := Place(s, read, Placement{PrimaryWeight: tt.weight}, func(int) int { return d }); node == "p" {
				t.Errorf("primary_read_weight %d: a draining primary was drawn", tt.weight)
			}
		}
	}
	if !ReadsPrimary(read, Placement{PrimaryWeight: 1}) || ReadsPrimary(read, Placement{}) ||
		ReadsPrimary(Class{Route: Primary}, Placement{PrimaryWeight: 1}) || ReadsPrimary(read, Placement{PrimaryWeight: 1, Pinned: true}) {
		t.Error("ReadsPrimary: want true only for a replica-eligible unit with a primary weight")
	}
}

// Spread deals every value of [0, n) once per n draws, in an order that changes between decks;
// Place with it spreads consecutive sessions over the nodes by weight exactly.
func TestSpread(t *testing.T) {
	deck.Lock()
	deck.cards = nil
	deck.Unlock()
	orders := map[string]bool{}
	for round := range 40 {
		seen := make([]int, 5)
		var order []int
		for range 5 {
			v := Spread(5)
			if v < 0 || v >= 5 {
				t.Fatalf("Spread(5) = %d", v)
			}
			seen[v]++
			order = append(order, v)
		}
		for v, c := range seen {
			if c != 1 {
				t.Fatalf("round %d: value %d dealt %d times in one deck (%v)", round, v, c, order)
			}
		}
		orders[fmt.Sprint(order)] = true
	}
	if len(orders) < 2 {
		t.Fatalf("40 decks of 5 all dealt in the same order %v", orders)
	}
	if Spread(1) != 0 || Spread(0) != 0 {
		t.Fatal("Spread of one value or none: want 0")
	}
	// Sessions through Place with Spread: r1 (weight 1), r2 (weight 3) and the primary (weight 2).
	counts := map[string]int{}
	for range 6 * 10 {
		node, _, _ := Place(snap3(0, 1, 2), Class{Route: Replica}, Placement{PrimaryWeight: 2}, Spread)
		counts[node]++
	}
	if counts["r1"] != 10 || counts["r2"] != 30 || counts["p"] != 20 {
		t.Fatalf("60 placements with Spread: %v; want r1 10, r2 30, p 20", counts)
	}
}

// PickToWait passes over replicas too far behind to catch up within the wait, and those whose
// wait timed out too recently to have been measured again; the sticky one comes first.
func TestPickToWait(t *testing.T) {
	now := time.Unix(1000, 0)
	snap := &topology.Snapshot{Primary: 0, Nodes: []topology.NodeState{
		{Name: "p", Up: true, Role: topology.RolePrimary},
		{Name: "slow", Up: true, Role: topology.RoleReplica, Weight: 1, Lag: 3 * time.Second},
		{Name: "missed", Up: true, Role: topology.RoleReplica, Weight: 1},
		{Name: "ok", Up: true, Role: topology.RoleReplica, Weight: 1},
	}, Readable: []int{1, 2, 3}}
	var missed WaitMisses
	missed.Add("missed", now.Add(-500*time.Millisecond))
	first := func(n int) int { return 0 }
	if got := PickToWait(snap, "", time.Second, 500*time.Millisecond, missed, now, nil, first); got != "ok" {
		t.Errorf("picked %q, want ok (slow lags 3 s > 1 s; missed timed out 0.5 s ago < 1 s)", got)
	}
	if got := PickToWait(snap, "missed", time.Second, 500*time.Millisecond, missed, now.Add(time.Second), nil, first); got != "missed" {
		t.Errorf("picked %q, want the sticky missed once its hold (max(1 s, 2×0.5 s)) has passed", got)
	}
	if got := PickToWait(snap, "", time.Second, 500*time.Millisecond, missed, now, func(n string) bool { return n == "ok" }, first); got != "" {
		t.Errorf("picked %q with ok avoided, want none", got)
	}
	if got := PickToWait(snap, "", 5*time.Second, 500*time.Millisecond, nil, now, nil, first); got != "slow" {
		t.Errorf("picked %q with a 5 s wait, want slow (drawn first)", got)
	}
}
