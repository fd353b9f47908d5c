package health

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// Observation is one probe's result for one node.
type Observation struct {
	Up        bool
	InRecover bool
	Err       error
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
	cluster *topology.Cluster
	live    *topology.Live
	newP    ProberFactory
	log     *slog.Logger

	mu      sync.Mutex // guards probers
	probers map[string]Prober

	changed chan struct{} // closed and replaced whenever a snapshot is published
}

// NewChecker returns a Checker for cl that publishes to live.
func NewChecker(cl *topology.Cluster, live *topology.Live, f ProberFactory, log *slog.Logger) *Checker {
	return &Checker{cluster: cl, live: live, newP: f, log: log, probers: map[string]Prober{}, changed: make(chan struct{})}
}

// Run probes until ctx is done. The first round runs at once.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.cluster.ProbeInterval.D())
	defer t.Stop()
	defer c.closeAll()
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
	p, ok := c.probers[n.Name]
	if !ok {
		p = c.newP(n)
		c.probers[n.Name] = p
	}
	return p
}

// Round probes every node once, concurrently, and publishes the resulting snapshot.
func (c *Checker) Round(ctx context.Context) *topology.Snapshot {
	nodes := c.cluster.Nodes
	obs := make([]Observation, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, c.cluster.ProbeTimeout.D())
			defer cancel()
			obs[i] = c.prober(n).Probe(pctx)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return c.live.Load()
	}
	s := Build(c.cluster, c.live.Load(), obs, time.Now())
	c.report(c.live.Load(), s)
	c.live.Store(s)
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return s
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
	}
}

// Build derives a snapshot from one round of observations. prev (may be nil) breaks ties when
// more than one node claims to be the primary: the previous primary keeps the role; with no
// previous primary among the claimants, no node is primary (fail closed: two writable nodes are
// never both routed to).
func Build(cl *topology.Cluster, prev *topology.Snapshot, obs []Observation, now time.Time) *topology.Snapshot {
	s := &topology.Snapshot{Cluster: cl.Name, Primary: -1, Nodes: make([]topology.NodeState, len(cl.Nodes))}
	var claimants []int
	for i, n := range cl.Nodes {
		o := obs[i]
		ns := topology.NodeState{Name: n.Name, Address: n.Address, Up: o.Up, Weight: n.ReadWeight(), Drain: n.Drain, Checked: now}
		if o.Err != nil {
			ns.LastErr = o.Err.Error()
		}
		if o.Up {
			if o.InRecover {
				ns.Role = topology.RoleReplica
			} else {
				ns.Role = topology.RolePrimary
				claimants = append(claimants, i)
			}
		}
		s.Nodes[i] = ns
	}
	switch {
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
	for i, n := range s.Nodes {
		if n.Up && n.Role == topology.RoleReplica && !n.Drain && n.Weight > 0 {
			s.Readable = append(s.Readable, i)
		}
	}
	return s
}
