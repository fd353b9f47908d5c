package admin

import (
	"context"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/topology"
)

// ClustersResponse is the document GET /api/v1/clusters returns.
type ClustersResponse struct {
	Clusters []ClusterStatus `json:"clusters"`
}

// ClusterStatus is one cluster as the admin API reports it. Counters are totals since baton
// started.
type ClusterStatus struct {
	Name        string `json:"name"`
	Engine      string `json:"engine"`
	Listen      string `json:"listen"` // the bound client address
	Consistency string `json:"consistency"`
	// Primary is the name of the node taking writes; "" when no primary is known.
	Primary          string       `json:"primary"`
	ReadableReplicas int          `json:"readable_replicas"`
	Nodes            []NodeStatus `json:"nodes"`
	// Epoch and Phase are the cluster's shared state (0 and "" without etcd); Coordinator the
	// instance coordinating it; History its failovers and switchovers, oldest first.
	Epoch       uint64           `json:"epoch"`
	Phase       string           `json:"phase,omitempty"`
	StateReason string           `json:"state_reason,omitempty"`
	Coordinator string           `json:"coordinator,omitempty"`
	History     []topology.Event `json:"history,omitempty"`
	// Alert is the coordinator's standing complaint (an automatic failover it refused, and the
	// command that resolves it); "" when there is none.
	Alert      string    `json:"alert,omitempty"`
	AlertSince time.Time `json:"alert_since,omitzero"`
	// FailoverPaused: automatic failover is suspended (`baton pause`); Pause says by whom,
	// since when and why. Switchovers and `baton failover` still run.
	FailoverPaused bool            `json:"failover_paused"`
	Pause          *topology.Pause `json:"pause,omitempty"`
	// Diverged lists old primaries holding changes the current primary lacks: they need a
	// rewind (PostgreSQL) or a repair (MySQL/MariaDB) before they can follow it.
	Diverged []topology.Divergence `json:"diverged,omitempty"`
	// Buffered counts statements waiting for a primary now; BufferedTotal / BufferFailed are
	// totals of statements that waited, and of those that gave up.
	Buffered      int64 `json:"buffered"`
	BufferedTotal int64 `json:"buffered_total"`
	BufferFailed  int64 `json:"buffer_failed"`
	// Failovers counts completed failovers and switchovers in the history.
	Failovers int `json:"failovers"`

	Sessions         int64           `json:"sessions"`        // client sessions connected now
	SessionsParked   int64           `json:"sessions_parked"` // of them, idle ones parked without a goroutine (limits.park_idle_after)
	SessionsAccepted int64           `json:"sessions_accepted"`
	SessionsRejected int64           `json:"sessions_rejected"`
	Statements       StatementCounts `json:"statements"`
	Misroutes        int64           `json:"misroutes"`
	Retries          int64           `json:"retries"`
	AuthFailures     int64           `json:"auth_failures"`
	// RYWWaits / RYWFallbacks (consistency read_your_writes): waits on a replica for the
	// session's last write before a read, and reads sent to the primary because no replica had
	// it in time.
	RYWWaits     int64 `json:"ryw_waits"`
	RYWFallbacks int64 `json:"ryw_fallbacks"`
	// Pinned counts the sessions that hold each kind of state keeping them on one backend
	// (temp_table, listen, advisory_lock, …); every reason is present.
	Pinned map[string]int64 `json:"pinned_sessions"`
}

// StatementCounts counts the statements routed to each kind of node.
type StatementCounts struct {
	Primary int64 `json:"primary"`
	Replica int64 `json:"replica"`
}

// NodeStatus is one node as the health checker last saw it, with its backend pool.
type NodeStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Up      bool   `json:"up"`
	Role    string `json:"role"` // primary, replica or unknown
	// Readable: the node is a replica that may serve reads now.
	Readable  bool      `json:"readable"`
	Weight    int       `json:"weight"`
	Drain     bool      `json:"drain"`
	LastError string    `json:"last_error,omitempty"`
	Checked   time.Time `json:"checked,omitzero"`
	// Replication, for replicas: lag in seconds and bytes (-1 unknown), the position replayed,
	// whether it streams, and why it serves no reads ("" when it does).
	LagSeconds float64 `json:"lag_seconds"`
	LagBytes   int64   `json:"lag_bytes"`
	ReplayPos  string  `json:"replay_position,omitempty"`
	Streaming  bool    `json:"streaming"`
	Sync       bool    `json:"sync,omitempty"`
	// Fenced: the node claims the primary role but is not the epoch's primary; never routed to.
	Fenced bool `json:"fenced,omitempty"`
	// Diverged (an old primary): "" unless it holds changes the current primary lacks; then
	// the positions (ClusterStatus.Diverged has the steps to repair it).
	Diverged   string `json:"diverged,omitempty"`
	ReadOnly   bool   `json:"read_only,omitempty"`
	Unreadable string `json:"unreadable,omitempty"`
	// Connections are the backend connections of the node's pool; Open includes Idle.
	Connections PoolCounts `json:"connections"`
}

// PoolCounts are a node pool's connection counts.
type PoolCounts struct {
	Open int `json:"open"`
	Idle int `json:"idle"`
}

// InUse is the number of backend connections held by client sessions.
func (p PoolCounts) InUse() int { return p.Open - p.Idle }

// roles are the values NodeStatus.Role and the baton_node_role label take.
var roles = []string{topology.RolePrimary.String(), topology.RoleReplica.String(), topology.RoleUnknown.String()}

// clusterStatus reads c's current topology snapshot and counters. It is the one place the
// metrics and the JSON API read the instance.
func clusterStatus(c *proxy.Cluster) ClusterStatus {
	cs := ClusterStatus{
		Name:        c.Config.Name,
		Engine:      string(c.Config.Engine),
		Listen:      c.Addr().String(),
		Consistency: string(c.Config.Consistency),
	}
	var pools map[string][2]int
	switch {
	case c.PG != nil:
		m := c.PG.Metrics()
		cs.Sessions, cs.SessionsAccepted, cs.SessionsRejected = m.Sessions.Load(), m.Accepted.Load(), m.Rejected.Load()
		cs.Statements = StatementCounts{Primary: m.ToPrimary.Load(), Replica: m.ToReplica.Load()}
		cs.Misroutes, cs.Retries, cs.AuthFailures = m.Misroutes(), m.Retries(), m.AuthFailures()
		cs.RYWWaits, cs.RYWFallbacks = m.RYWWaits(), m.RYWFallbacks()
		cs.Pinned = m.Pinned.Snapshot()
		cs.SessionsParked = int64(c.PG.ParkedSessions())
		pools = c.PG.PoolStats()
	case c.My != nil:
		m := c.My.Metrics()
		cs.Sessions, cs.SessionsAccepted, cs.SessionsRejected = m.Sessions.Load(), m.Accepted.Load(), m.Rejected.Load()
		cs.Statements = StatementCounts{Primary: m.ToPrimary.Load(), Replica: m.ToReplica.Load()}
		cs.Misroutes, cs.Retries, cs.AuthFailures = m.Misroutes(), m.Retries(), m.AuthFailures()
		cs.RYWWaits, cs.RYWFallbacks = m.GTIDWaits(), m.GTIDFallbacks()
		cs.Pinned = m.Pinned.Snapshot()
		cs.SessionsParked = int64(c.My.ParkedSessions())
		pools = c.My.PoolStats()
	}

	buf := c.Buffer()
	cs.Buffered, cs.BufferedTotal, cs.BufferFailed = buf.Held(), buf.Buffered.Load(), buf.Failed.Load()
	if st, ok := c.State(); ok {
		cs.Epoch, cs.Phase, cs.StateReason = st.Epoch, string(st.Phase), st.Reason
	}
	snap := c.Live.Load()
	if snap == nil {
		// Not probed yet: report the configured nodes as unknown and down.
		for _, n := range c.Config.Nodes {
			cs.Nodes = append(cs.Nodes, NodeStatus{Name: n.Name, Address: n.Address, Role: topology.RoleUnknown.String(),
				Weight: n.ReadWeight(), Drain: n.Drain, Connections: poolCounts(pools[n.Name])})
		}
		return cs
	}
	if p := snap.PrimaryNode(); p != nil {
		cs.Primary = p.Name
	}
	cs.ReadableReplicas = len(snap.Readable)
	readable := make(map[int]bool, len(snap.Readable))
	for _, i := range snap.Readable {
		readable[i] = true
	}
	cs.Nodes = make([]NodeStatus, 0, len(snap.Nodes))
	for i, n := range snap.Nodes {
		cs.Nodes = append(cs.Nodes, NodeStatus{
			Name: n.Name, Address: n.Address, Up: n.Up, Role: n.Role.String(), Readable: readable[i],
			Weight: n.Weight, Drain: n.Drain, LastError: n.LastErr, Checked: n.Checked,
			Connections: poolCounts(pools[n.Name]),
			LagSeconds:  lagSeconds(n.Lag), LagBytes: n.LagBytes, ReplayPos: n.ReplayPos,
			Streaming: n.Streaming, Sync: n.Sync, Unreadable: n.Unreadable,
			Fenced: n.Fenced, ReadOnly: n.ReadOnly,
		})
	}
	return cs
}

func poolCounts(s [2]int) PoolCounts { return PoolCounts{Open: s[0], Idle: s[1]} }

// statuses reads every cluster of inst, in configuration order.
func statuses(inst *proxy.Instance) []ClusterStatus {
	cls := inst.Clusters()
	out := make([]ClusterStatus, 0, len(cls))
	for _, c := range cls {
		out = append(out, clusterStatus(c))
	}
	return out
}

// lagSeconds renders a lag duration in seconds (-1 when unknown).
func lagSeconds(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return d.Seconds()
}

// addShared fills what only etcd knows: the coordinator and the failover history.
func addShared(ctx context.Context, inst *proxy.Instance, cs *ClusterStatus) {
	st := inst.Store()
	if st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if h, err := st.History(ctx, cs.Name); err == nil {
		cs.History = h
		for _, e := range h {
			if e.Kind != "initial" && e.Error == "" {
				cs.Failovers++
			}
		}
	}
	if l, err := st.Leader(ctx, cs.Name); err == nil {
		cs.Coordinator = l
	}
	if a, ok, err := st.Alert(ctx, cs.Name); err == nil && ok {
		cs.Alert, cs.AlertSince = a.Message, a.Since
	}
	if p, ok, err := st.Paused(ctx, cs.Name); err == nil && ok {
		cs.FailoverPaused, cs.Pause = true, &p
	}
	if d, err := st.Diverged(ctx, cs.Name); err == nil {
		cs.Diverged = d
		for _, dv := range d {
			for i := range cs.Nodes {
				if cs.Nodes[i].Name == dv.Node {
					cs.Nodes[i].Diverged = dv.Detail
				}
			}
		}
	}
}
