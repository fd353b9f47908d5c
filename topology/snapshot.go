package topology

import (
	"sync/atomic"
	"time"
)

// Role is what a node is, as last observed.
type Role uint8

// Roles.
const (
	RoleUnknown Role = iota
	RolePrimary
	RoleReplica
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	}
	return "unknown"
}

// NodeState is one node as the health checker last saw it.
type NodeState struct {
	Name    string
	Address string
	Up      bool
	Role    Role
	Weight  int
	Drain   bool
	LastErr string
	Checked time.Time
}

// Snapshot is an immutable view of one cluster. Never modify a published Snapshot: build a new
// one and Store it.
type Snapshot struct {
	Cluster string
	// Primary is the index in Nodes of the node that takes writes, or -1.
	Primary int
	Nodes   []NodeState
	// Readable lists the indexes of replicas that may serve reads now, in Nodes order.
	Readable []int
}

// PrimaryNode returns the primary's state, or nil.
func (s *Snapshot) PrimaryNode() *NodeState {
	if s == nil || s.Primary < 0 || s.Primary >= len(s.Nodes) {
		return nil
	}
	return &s.Nodes[s.Primary]
}

// Index returns the index of the named node, or -1.
func (s *Snapshot) Index(name string) int {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return i
		}
	}
	return -1
}

// Live publishes the current Snapshot of a cluster. The zero value holds no snapshot; Load then
// returns nil. Safe for concurrent use.
type Live struct{ p atomic.Pointer[Snapshot] }

// Load returns the current snapshot (nil before the first Store).
func (l *Live) Load() *Snapshot { return l.p.Load() }

// Store publishes s.
func (l *Live) Store(s *Snapshot) { l.p.Store(s) }
