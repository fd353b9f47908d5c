package health

import (
	"context"
	"slices"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// This file decides, per node, whether this instance still observes it (DESIGN §3: the etcd
// observer key exists while it does), from two kinds of evidence:
//
//   - Gone (refused, reset, EOF, shutting down), from a probe or from Suspect: confirm_probes
//     probes on new connections, confirm_interval apart; when every one says Gone too, the
//     observation is withdrawn at once and a snapshot showing the node down is published.
//   - Timeout (and Unclear errors that a confirmation did not settle): the observation goes
//     after failure_threshold consecutive failed probe rounds.
//
// A probe that succeeds restores the observation.

// confirmCooldown is how long after a confirmation that found the node alive another one is
// not started (many client sessions may report the same refused connect).
const confirmCooldown = 100 * time.Millisecond

// nodeView is what this instance concludes about one node.
type nodeView struct {
	observed   bool      // the observation stands (the observer key should exist)
	fails      int       // consecutive failed probe rounds
	confirming bool      // a confirmation runs
	confirmed  time.Time // when the last confirmation ended
}

// OnObserve registers f, which publishes whether this instance observes node (up) or has
// withdrawn its observation. The checker calls it from one goroutine of its own, in order,
// whenever its conclusion changes, and again after a failure. Register before Run.
func (c *Checker) OnObserve(f func(ctx context.Context, node string, up bool) error) {
	c.onObserve.Store(&f)
}

// Observed reports whether this instance currently observes node (its probes succeed, or
// their failures are not yet conclusive).
func (c *Checker) Observed(node string) bool {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	v := c.views[node]
	return v != nil && v.observed
}

// Suspect reports strong evidence from the data path that node is gone (a client statement's
// connection to it was refused, reset or closed). Unless a confirmation of the node runs or
// just ended, one starts: if it confirms, the observation is withdrawn at once. Safe to call
// from any goroutine, as often as wanted; it does not block.
func (c *Checker) Suspect(node string) {
	cl := c.cluster.Load()
	for _, n := range cl.Nodes {
		if n.Name == node {
			c.startConfirm(cl, n, "a client connection")
			return
		}
	}
}

// judge updates the views from one round's observations and starts confirmations.
func (c *Checker) judge(cl *topology.Cluster, obs []Observation) {
	type todo struct {
		n   *topology.Node
		why string
	}
	var confirm []todo
	c.evMu.Lock()
	for i, n := range cl.Nodes {
		v := c.viewLocked(n.Name)
		o := obs[i]
		if o.Up {
			v.observed, v.fails = true, 0
			continue
		}
		v.fails++
		if v.observed && v.fails >= max(1, cl.FailureThreshold) {
			v.observed = false
			c.log.Warn("node unreachable: observation withdrawn", "cluster", cl.Name, "node", n.Name,
				"failed_probes", v.fails, "evidence", Classify(o.Err).String(), "error", errText(o.Err))
		}
		if v.observed && Classify(o.Err) != Timeout {
			confirm = append(confirm, todo{n, "a probe: " + errText(o.Err)})
		}
	}
	c.evMu.Unlock()
	for _, t := range confirm {
		c.startConfirm(cl, t.n, t.why)
	}
	c.kickObserve()
}

func (c *Checker) viewLocked(node string) *nodeView {
	v := c.views[node]
	if v == nil {
		v = &nodeView{}
		c.views[node] = v
	}
	return v
}

// startConfirm starts a confirmation of n unless one runs, ran just now, the node is already
// withdrawn, or the checker is not running.
func (c *Checker) startConfirm(cl *topology.Cluster, n *topology.Node, why string) {
	ctx := c.runCtx.Load()
	if ctx == nil || (*ctx).Err() != nil {
		return
	}
	c.evMu.Lock()
	v := c.viewLocked(n.Name)
	if v.confirming || !v.observed || time.Since(v.confirmed) < confirmCooldown {
		c.evMu.Unlock()
		return
	}
	v.confirming = true
	c.wg.Add(1)
	c.evMu.Unlock()
	go func() {
		defer c.wg.Done()
		c.confirm(*ctx, cl, n, why)
	}()
}

// confirm probes n confirm_probes times on new connections. When every probe says Gone, the
// observation is withdrawn and a snapshot with the node down is published at once.
func (c *Checker) confirm(ctx context.Context, cl *topology.Cluster, n *topology.Node, why string) {
	start := time.Now()
	p := c.newP(n)
	defer p.Close()
	var last Observation
	gone := true
	k := max(1, cl.ConfirmProbes)
	for j := range k {
		if j > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(cl.ConfirmInterval.D()):
			}
		}
		if ctx.Err() != nil {
			gone = false
			break
		}
		pctx, cancel := context.WithTimeout(ctx, cl.ProbeTimeout.D())
		at := time.Now()
		o := p.Probe(pctx)
		cancel()
		o.At = at
		if o.Up || Classify(o.Err) != Gone {
			gone = false
			break
		}
		last = o
	}
	c.evMu.Lock()
	v := c.viewLocked(n.Name)
	v.confirming, v.confirmed = false, time.Now()
	withdraw := gone && v.observed
	if withdraw {
		v.observed = false
	}
	c.evMu.Unlock()
	if !withdraw {
		return
	}
	c.log.Warn("node gone: observation withdrawn", "cluster", cl.Name, "node", n.Name, "suspected_by", why,
		"confirm_probes", k, "took", time.Since(start).Round(time.Millisecond), "error", errText(last.Err))
	c.kickObserve()
	// Publish the node as down now rather than at the next round.
	c.pubMu.Lock()
	if c.lastObs != nil && c.lastCl != nil {
		if i := slices.IndexFunc(c.lastCl.Nodes, func(x *topology.Node) bool { return x.Name == n.Name }); i >= 0 && c.lastObs[i].At.Before(last.At) {
			obs := slices.Clone(c.lastObs)
			obs[i] = last
			c.lastObs = obs
			c.publish(c.lastCl, obs)
		}
	}
	c.pubMu.Unlock()
}

// kickObserve wakes the observer loop.
func (c *Checker) kickObserve() {
	select {
	case c.obsKick <- struct{}{}:
	default:
	}
}

// observeLoop publishes the views through OnObserve's function until ctx ends.
func (c *Checker) observeLoop(ctx context.Context) {
	published := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.obsKick:
		}
		f := c.onObserve.Load()
		if f == nil {
			continue
		}
		c.evMu.Lock()
		want := make(map[string]bool, len(c.views))
		for name, v := range c.views {
			want[name] = v.observed
		}
		c.evMu.Unlock()
		for name, up := range want {
			if was, ok := published[name]; ok && was == up {
				continue
			}
			octx, cancel := context.WithTimeout(ctx, time.Second)
			err := (*f)(octx, name, up)
			cancel()
			if err == nil {
				published[name] = up
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
