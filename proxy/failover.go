package proxy

import (
	"context"
	"log/slog"
	"time"

	"github.com/baton-proxy/baton/failover"
	"github.com/baton-proxy/baton/topology"
)

// This file wires a cluster into the failover protocol (DESIGN §3): every instance follows the
// shared state and acknowledges phase changes; every instance also campaigns to coordinate.

// newEngine returns the failover steps for the cluster's engine.
func newEngine(cl *topology.Cluster) failover.Engine {
	if cl.Engine == topology.EngineMySQL {
		return failover.NewMy(cl)
	}
	return failover.NewPG(cl)
}

// follow keeps the cluster's checker on the shared state and acknowledges every epoch that
// takes the primary away: writes to the old primary stop (the snapshot has no primary, so new
// writes wait in the buffer), its idle pooled connections are closed, and — in a switchover —
// transactions running on it get up to failover.drain_timeout to finish.
func (inst *Instance) follow(ctx context.Context, c *Cluster) {
	store := inst.shared.store
	name := c.Config.Name
	acked := uint64(0)
	apply := func(st topology.ClusterState) {
		prev, had := c.Checker.State()
		c.Checker.SetState(st)
		if !had || prev.Epoch != st.Epoch || prev.Phase != st.Phase || prev.Primary != st.Primary {
			inst.log.Info("cluster state", "cluster", name, "epoch", st.Epoch, "phase", string(st.Phase),
				"primary", st.Primary, "reason", st.Reason)
		}
		if st.Phase == topology.PhaseStable || st.Epoch == acked {
			return
		}
		old := st.Old
		if old == "" {
			old = st.Primary
		}
		srv := c.server()
		if st.Phase == topology.PhaseSwitchingOver {
			deadline := time.Now().Add(c.current().Failover.DrainTimeout.D())
			for srv.TxOn(old) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
			if n := srv.TxOn(old); n > 0 {
				inst.log.Warn("switchover: transactions still running on the old primary are cut off", "cluster", name, "node", old, "sessions", n)
			}
		}
		// Every connection to the old primary goes, busy ones too: a statement that a hung
		// primary completes after the failover must reach its client as an error, never as a
		// success on a node that is no longer the primary.
		if n := srv.CutNode(old); n > 0 {
			inst.log.Info("closed the connections to the old primary", "cluster", name, "node", old, "connections", n)
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := store.Ack(actx, name, st.Epoch); err != nil {
			inst.log.Warn("cannot acknowledge the cluster state", "cluster", name, "epoch", st.Epoch, "error", err)
			return
		}
		acked = st.Epoch
	}
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, ok, rev, err := store.StateRev(rctx, name)
		cancel()
		if err == nil {
			if ok {
				apply(st)
			}
			// From the revision read: a state written in between is not missed.
			wctx, wcancel := context.WithCancel(ctx)
			store.WatchStateFrom(wctx, name, rev, apply)
			wcancel()
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// coordinate runs the cluster's failover manager in this instance.
func (inst *Instance) coordinate(ctx context.Context, c *Cluster, log *slog.Logger) {
	eng := newEngine(c.Config)
	defer eng.Close()
	c.manager = failover.NewManager(c.current, c.Live, inst.shared.store, eng, log)
	c.manager.Run(ctx)
}
