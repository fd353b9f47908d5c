package proxy

import (
	"fmt"

	"github.com/baton-proxy/baton/topology"
)

// Reload applies a new configuration to the running instance without dropping sessions: per
// cluster, nodes added or removed, weights, drain, limits, lag bounds, consistency and users.
// Adding or removing a cluster, or changing a cluster's engine or listen address, needs a
// restart; such a configuration is refused as a whole and the running one stays.
func (inst *Instance) Reload(cfg *topology.Config) error {
	if len(cfg.Clusters) != len(inst.clusters) {
		return fmt.Errorf("%s: adding or removing clusters needs a restart", cfg.File)
	}
	byName := map[string]*topology.Cluster{}
	for _, cl := range cfg.Clusters {
		byName[cl.Name] = cl
	}
	for _, c := range inst.clusters {
		cl := byName[c.Config.Name]
		if cl == nil {
			return fmt.Errorf("%s: cluster %s is missing; adding or removing clusters needs a restart", cfg.File, c.Config.Name)
		}
		if cl.Engine != c.Config.Engine || cl.Listen != c.Config.Listen {
			return fmt.Errorf("%s: cluster %s: engine and listen address change only with a restart", cfg.File, cl.Name)
		}
	}
	for _, c := range inst.clusters {
		cl := byName[c.Config.Name]
		var err error
		if c.PG != nil {
			err = c.PG.Reconfigure(cl)
		} else {
			err = c.My.Reconfigure(cl)
		}
		if err != nil {
			return err
		}
		c.Checker.SetCluster(cl)
		c.cfg.Store(cl)
		inst.log.Info("configuration reloaded", "cluster", cl.Name, "nodes", len(cl.Nodes))
	}
	return nil
}
