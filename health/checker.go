package health

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// Observation is one probe's result for one node. Its zero value is a node that did not answer;
// the zero value of each replication field means "unknown".
type Observation struct {
	Up        bool
	InRecover bool
	// ReadOnly: a node that is not a replica refuses writes (PostgreSQL
	// default_transaction_read_only on: fenced).
	ReadOnly bool
	Err      error

	// At is when the probe started (set by Checker.Round, not by probers).
	At time.Time
	// ReplayPos is the node's position: on a replica what it has applied (PostgreSQL replay LSN,
	// MariaDB @@gtid_current_pos, MySQL @@gtid_executed), on a primary what it has written
	// (PostgreSQL pg_current_wal_lsn(), MariaDB @@gtid_current_pos).
	ReplayPos string
	// PosKind says how ReplayPos compares with other nodes' positions.
	PosKind PosKind
	// ReceivePos is a PostgreSQL replica's received WAL LSN ("" when unknown).
	ReceivePos string
	// Lag is the replica's own estimate of its lag, valid when LagKnown (PostgreSQL: now minus
	// the last replayed commit's timestamp, both read on the replica; MySQL/MariaDB:
	// Seconds_Behind_Master).
	Lag      time.Duration
	LagKnown bool
	// Following is the host:port the replica streams from ("" when unknown).
	Following string
	// Streaming: the replica is connected to its source and applying what it receives.
	Streaming bool
	// AppName is the application_name a PostgreSQL replica's WAL receiver uses on its primary.
	AppName string
	// SyncNames are the application names a PostgreSQL primary lists as synchronous standbys.
	SyncNames []string
	// Limited, when set, says what the probe could not see for lack of privileges; the checker
	// logs it once per node.
	Limited string
}

// Prober probes one node. Implementations keep their own monitoring connection and reconnect as
// needed; Probe must return within ctx's deadline. Close releases the connection.
type Prober interface {
	Probe(ctx context.Context) Observation
	Close()
}

// ProberFactory makes the prober for one node.
type ProberFactory func(node *topology.Node) Prober

// Checker periodically probes the nodes of one cluster and publishes snapshots to Live.
type Checker struct {
	cluster atomic.Pointer[topology.Cluster] // swapped by SetCluster on a configuration reload
	live    *topology.Live
	newP    ProberFactory
	log     *slog.Logger

	mu      sync.Mutex // guards probers, warned and changed
	probers map[string]Prober
	warned  map[string]bool // nodes whose Observation.Limited was logged

	changed chan struct{} // closed and replaced whenever a snapshot is published
	onRound atomic.Pointer[func(*topology.Snapshot)]

	// Evidence (suspect.go): what this instance concludes about each node.
	evMu      sync.Mutex // guards views
	views     map[string]*nodeView
	obsKick   chan struct{} // wakes observeLoop
	onObserve atomic.Pointer[func(ctx context.Context, node string, up bool) error]
	runCtx    atomic.Pointer[context.Context] // Run's context while it runs (confirmations use it)
	wg        sync.WaitGroup                  // confirmations and observeLoop: Run waits for them

	state   atomic.Pointer[topology.ClusterState] // the shared state snapshots obey (nil: none)
	pubMu   sync.Mutex                            // serialises building and publishing snapshots
	lastObs []Observation                         // the last round's observations (under pubMu)
	lastCl  *topology.Cluster                     // the configuration of that round
	// trustAt (under pubMu): when a stable state naming a new primary arrived. Observations
	// of that node taken before then are overridden by the state (buildState).
	trustAt time.Time
}

// NewChecker returns a Checker for cl that publishes to live.
func NewChecker(cl *topology.Cluster, live *topology.Live, f ProberFactory, log *slog.Logger) *Checker {
	c := &Checker{live: live, newP: f, log: log, probers: map[string]Prober{}, warned: map[string]bool{}, changed: make(chan struct{}),
		views: map[string]*nodeView{}, obsKick: make(chan struct{}, 1)}
	c.cluster.Store(cl)
	return c
}

// Run probes until ctx is done. The first round runs at once. It returns when every goroutine
// it started (confirmations, the observer loop) has ended.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.cluster.Load().ProbeInterval.D())
	defer t.Stop()
	defer c.closeAll()
	ctx, cancel := context.WithCancel(ctx)
	defer c.wg.Wait()
	defer cancel()
	c.runCtx.Store(&ctx)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.observeLoop(ctx) }()
	for {
		c.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Checker) closeAll() {
	c.mu.Lock()
	ps := c.probers
	c.probers = map[string]Prober{}
	c.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
}

func (c *Checker) prober(n *topology.Node) Prober {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := proberKey(n)
	p, ok := c.probers[key]
	if !ok {
		p = c.newP(n)
		c.probers[key] = p
	}
	return p
}

// OnRound registers f to run after every published snapshot, on the checker's goroutine (it
// should be quick: the next round waits for it).
func (c *Checker) OnRound(f func(*topology.Snapshot)) { c.onRound.Store(&f) }

// SetCluster installs a reloaded configuration of the cluster; the next round uses it (nodes
// added or removed, weights, drain, lag bounds, probe timeout). Probers of nodes no longer
// configured are closed.
func (c *Checker) SetCluster(cl *topology.Cluster) {
	c.cluster.Store(cl)
	keep := map[string]bool{}
	for _, n := range cl.Nodes {
		keep[proberKey(n)] = true
	}
	c.mu.Lock()
	var gone []Prober
	for k, p := range c.probers {
		if !keep[k] {
			gone = append(gone, p)
			delete(c.probers, k)
		}
	}
	c.mu.Unlock()
	for _, p := range gone {
		p.Close()
	}
}

// Round probes every node once, concurrently, and publishes the resulting snapshot.
func (c *Checker) Round(ctx context.Context) *topology.Snapshot {
	cl := c.cluster.Load()
	nodes := cl.Nodes
	obs := make([]Observation, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, cl.ProbeTimeout.D())
			defer cancel()
			at := time.Now()
			o := c.prober(n).Probe(pctx)
			o.At = at
			obs[i] = o
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return c.live.Load()
	}
	c.warnLimited(cl, obs)
	c.judge(cl, obs)
	c.pubMu.Lock()
	c.lastObs, c.lastCl = obs, cl
	s := c.publish(cl, obs)
	c.pubMu.Unlock()
	if f := c.onRound.Load(); f != nil {
		(*f)(s)
	}
	return s
}

// publish builds a snapshot from obs under the current shared state and publishes it. The
// caller holds pubMu.
func (c *Checker) publish(cl *topology.Cluster, obs []Observation) *topology.Snapshot {
	old := c.live.Load()
	s := buildState(cl, old, obs, time.Now(), c.state.Load(), c.trustAt)
	c.report(old, s)
	c.live.Store(s)
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return s
}

// SetState installs the cluster's shared state (from etcd) and republishes the last round's
// observations under it at once, without waiting for the next probe: a phase change stops or
// releases writes immediately. A stable state that names a new primary releases writes to it
// at once although the last probe still saw it as a replica: the coordinator checked that it
// takes writes before publishing the state, and the epoch proves the state current. The next
// probe of the node confirms (or withdraws) the role.
func (c *Checker) SetState(st topology.ClusterState) {
	prev := c.state.Swap(&st)
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	if st.Phase == topology.PhaseStable && st.Primary != "" && prev != nil &&
		(prev.Epoch < st.Epoch || prev.Epoch == st.Epoch && prev.Phase != topology.PhaseStable) {
		was := prev.Primary
		if prev.Phase == topology.PhaseFailingOver {
			was = prev.Old
		}
		if was != st.Primary {
			c.trustAt = time.Now()
		}
	}
	if c.lastObs != nil {
		c.publish(c.lastCl, c.lastObs)
	}
}

// State returns the shared state the checker obeys (ok false when none was set).
func (c *Checker) State() (topology.ClusterState, bool) {
	if st := c.state.Load(); st != nil {
		return *st, true
	}
	return topology.ClusterState{}, false
}

// Changed returns a channel closed at the next published snapshot.
func (c *Checker) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Checker) report(old, s *topology.Snapshot) {
	for i, n := range s.Nodes {
		var was *topology.NodeState
		if old != nil && i < len(old.Nodes) && old.Nodes[i].Name == n.Name {
			was = &old.Nodes[i]
		}
		if was == nil || was.Up != n.Up || was.Role != n.Role {
			c.log.Info("node state", "cluster", s.Cluster, "node", n.Name, "up", n.Up, "role", n.Role.String(), "error", n.LastErr)
		}
		if n.Role != topology.RoleReplica {
			continue
		}
		readable := n.Unreadable == ""
		wasReadable := was != nil && was.Role == topology.RoleReplica && was.Unreadable == ""
		switch {
		case readable && !wasReadable:
			c.log.Info("replica joins the read set", "cluster", s.Cluster, "node", n.Name, "lag", n.Lag, "lag_bytes", n.LagBytes)
		case !readable && (wasReadable || was == nil || was.Role != topology.RoleReplica):
			c.log.Warn("replica serves no reads", "cluster", s.Cluster, "node", n.Name, "reason", n.Unreadable, "following", n.Following)
		}
	}
}

// warnLimited logs, once per node, what a probe cannot see for lack of privileges.
func (c *Checker) warnLimited(cl *topology.Cluster, obs []Observation) {
	c.mu.Lock()
	var todo []int
	for i, o := range obs {
		if name := cl.Nodes[i].Name; o.Limited != "" && !c.warned[name] {
			c.warned[name] = true
			todo = append(todo, i)
		}
	}
	c.mu.Unlock()
	for _, i := range todo {
		c.log.Warn("health probe is limited", "cluster", cl.Name, "node", cl.Nodes[i].Name, "detail", obs[i].Limited)
	}
}

// Build derives a snapshot from one round of observations. prev (may be nil) breaks ties when
// more than one node claims to be the primary: the previous primary keeps the role; with no
// previous primary among the claimants, no node is primary (fail closed: two writable nodes are
// never both routed to).
//
// A replica is readable when it is up, in recovery (read-only), not drained, has a read weight,
// streams, streams from the primary (this round's, else prev's; an unknown source is accepted),
// and is within cl.MaxLagBytes (PostgreSQL) and cl.MaxLag; an unknown lag fails a bound that is
// set. Each snapshot is judged on its own round: a replica leaves the read set at the first
// round that breaks a rule and rejoins at the first that keeps them all. prev also carries the
// primary's positions of recent rounds (Snapshot.PrimaryHistory), which bound the lag of a
// replica that has reached one of them. Build is pure.
func Build(cl *topology.Cluster, prev *topology.Snapshot, obs []Observation, now time.Time) *topology.Snapshot {
	return BuildState(cl, prev, obs, now, nil)
}

// BuildState is Build under the cluster's shared state st (nil or epoch 0: none). With a state,
// the primary is the node st names, when it answers as a primary and st's phase is stable;
// otherwise no node takes writes. Other nodes that claim the primary role are marked Fenced.
func BuildState(cl *topology.Cluster, prev *topology.Snapshot, obs []Observation, now time.Time, st *topology.ClusterState) *topology.Snapshot {
	return buildState(cl, prev, obs, now, st, time.Time{})
}

// buildState is BuildState where an observation of st's primary taken before trustAt (when
// the stable state naming that node arrived) counts as the node answering as a writable
// primary, whatever it showed: the state is newer than the probe (Checker.SetState).
func buildState(cl *topology.Cluster, prev *topology.Snapshot, obs []Observation, now time.Time, st *topology.ClusterState, trustAt time.Time) *topology.Snapshot {
	if st != nil && st.Epoch > 0 && st.Phase == topology.PhaseStable && !trustAt.IsZero() {
		for i, n := range cl.Nodes {
			if n.Name == st.Primary && obs[i].At.Before(trustAt) && (!obs[i].Up || obs[i].InRecover || obs[i].ReadOnly) {
				o := obs[i]
				o.Up, o.InRecover, o.ReadOnly, o.Err = true, false, false, nil
				o.Following, o.Streaming = "", false
				obs = slices.Clone(obs)
				obs[i] = o
			}
		}
	}
	s := &topology.Snapshot{Cluster: cl.Name, Primary: -1, Nodes: make([]topology.NodeState, len(cl.Nodes))}
	var claimants []int
	for i, n := range cl.Nodes {
		o := obs[i]
		ns := topology.NodeState{Name: n.Name, Address: n.Address, Up: o.Up, Weight: n.ReadWeight(), Drain: n.Drain, Checked: now,
			LagBytes: -1, Lag: -1}
		if o.Err != nil {
			ns.LastErr = o.Err.Error()
		}
		if o.Up {
			ns.ReplayPos, ns.ReadOnly = o.ReplayPos, o.ReadOnly
			if o.InRecover {
				ns.Role = topology.RoleReplica
				ns.Following, ns.Streaming = o.Following, o.Streaming
			} else {
				ns.Role = topology.RolePrimary
				claimants = append(claimants, i)
			}
		}
		s.Nodes[i] = ns
	}
	src := prev.PrimaryNode() // whom replicas must stream from
	switch {
	case st != nil && st.Epoch > 0:
		// The shared state decides (DESIGN §3): only the epoch's primary takes writes, and only
		// while the phase is stable; any other node claiming the role is fenced, never routed to.
		s.Epoch, s.Phase = st.Epoch, st.Phase
		for _, i := range claimants {
			if s.Nodes[i].Name != st.Primary {
				s.Nodes[i].Fenced = true
			} else if st.Phase == topology.PhaseStable {
				s.Primary = i
			}
		}
		if i := s.Index(st.Primary); i >= 0 {
			src = &s.Nodes[i]
		}
	case len(claimants) == 1:
		s.Primary = claimants[0]
	case len(claimants) > 1 && prev != nil:
		if pp := prev.PrimaryNode(); pp != nil {
			for _, i := range claimants {
				if s.Nodes[i].Name == pp.Name {
					s.Primary = i
				}
			}
		}
	}

	var p *Observation // the primary's observation this round
	if s.Primary >= 0 {
		p, src = &obs[s.Primary], &s.Nodes[s.Primary]
		src.LagBytes, src.Lag = 0, 0
		s.PrimaryHistory = primaryHistory(cl, prev, src.Name, p, now)
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if !n.Up || n.Role != topology.RoleReplica {
			continue
		}
		measureLag(n, &obs[i], p, s.PrimaryHistory, now)
		switch {
		case p != nil && obs[i].AppName != "":
			n.Sync = slices.Contains(p.SyncNames, obs[i].AppName)
		case p == nil && prev != nil:
			// No primary this round (it died, or one probe of it failed): the standbys it last
			// waited for keep the flag, which is when a failover needs it.
			if j := prev.Index(n.Name); j >= 0 {
				n.Sync = prev.Nodes[j].Sync
			}
		}
		if n.Unreadable = unreadable(cl, n, src); n.Unreadable == "" {
			s.Readable = append(s.Readable, i)
		} else if p == nil && wasReadable(prev, n.Name) && !n.Drain && n.Weight > 0 {
			// No node takes writes this round (the primary is down, or one probe of it
			// failed), so nothing newer than what this replica had can exist: it keeps
			// serving reads while the primary is away (DESIGN §3: reads keep flowing).
			n.Unreadable = ""
			s.Readable = append(s.Readable, i)
		}
	}
	return s
}

// wasReadable reports whether the node was in the previous snapshot's read set.
func wasReadable(prev *topology.Snapshot, name string) bool {
	if prev == nil {
		return false
	}
	for _, i := range prev.Readable {
		if prev.Nodes[i].Name == name {
			return true
		}
	}
	return false
}
