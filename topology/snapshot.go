package topology

import (
	"sync"
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

	// Replication as last measured. On the primary ReplayPos is its own current position and the
	// lags are 0; on a node that is down they are unknown.

	// LagBytes is how far the replica's replayed WAL is behind the primary's current WAL position
	// in the same probe round (PostgreSQL); -1 when unknown, always for MySQL/MariaDB.
	LagBytes int64
	// Lag bounds how old the replica's data is: 0 when it has replayed the primary's position of
	// the same round, else the replica's own estimate (PostgreSQL: now − last replayed commit
	// time; MySQL/MariaDB: Seconds_Behind_Master), lowered to the age of the newest position in
	// Snapshot.PrimaryHistory that the replica has reached. -1 when unknown.
	Lag time.Duration
	// Following is the host:port the replica streams from, as the replica reports it; "" when
	// unknown (monitor user without the privilege, or a unix socket).
	Following string
	// Streaming: the replica receives and applies changes from its source (PostgreSQL: WAL
	// receiver streaming; MySQL/MariaDB: IO and SQL threads both running).
	Streaming bool
	// ReplayPos is the replayed position, for display: a pg_lsn ("0/3000060") or a GTID position.
	ReplayPos string
	// Sync: the primary lists this replica as a synchronous standby (PostgreSQL).
	Sync bool
	// ReadOnly: the node refuses writes although it is not a replica (PostgreSQL
	// default_transaction_read_only on: a fenced old primary).
	ReadOnly bool
	// Fenced: the node claims to be a primary but is not the primary of the cluster's epoch
	// (DESIGN §3 step 8). It is never routed to.
	Fenced bool
	// Unreadable says why a replica is not in Snapshot.Readable ("" for readable replicas and for
	// nodes that are not replicas), e.g. "not streaming" or "lag 31s > max_lag 2s".
	Unreadable string
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
	// PrimaryHistory holds the primary's positions of recent rounds, oldest first, each with the
	// time its probe started; it restarts when the primary changes. A replica that has reached
	// one of them lacks nothing older than that probe.
	PrimaryHistory []PosSample
	// Epoch and Phase are the cluster's shared state (etcd `state` key) this snapshot obeys;
	// Epoch 0 when there is none (etcd off, or not written yet). While Phase is not stable,
	// Primary is -1: writes wait in the failover buffer.
	Epoch uint64
	Phase Phase
}

// PosSample is a node's replication position and when the probe that read it started.
type PosSample struct {
	Pos string
	At  time.Time
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
type Live struct {
	p  atomic.Pointer[Snapshot]
	mu sync.Mutex
	ch chan struct{} // closed by the next Store; nil until someone waits
}

// Load returns the current snapshot (nil before the first Store).
func (l *Live) Load() *Snapshot { return l.p.Load() }

// Store publishes s and wakes everyone waiting on Changed.
func (l *Live) Store(s *Snapshot) {
	l.p.Store(s)
	l.mu.Lock()
	if l.ch != nil {
		close(l.ch)
		l.ch = nil
	}
	l.mu.Unlock()
}

// Changed returns a channel closed by the next Store. Take it before Load to miss no update.
func (l *Live) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		l.ch = make(chan struct{})
	}
	return l.ch
}
