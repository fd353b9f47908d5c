package myproxy

import "github.com/baton-proxy/baton/proxy/pool"

// PoolStats reports, per node name, the backend connections open and idle in the node's pool
// ([0] open, [1] idle). Safe for concurrent use: the node set is fixed when the server is built.
func (s *Server) PoolStats() map[string][2]int {
	out := make(map[string][2]int, len(s.nodeMap()))
	for name, np := range s.nodeMap() {
		open, idle := np.Stats()
		out[name] = [2]int{open, idle}
	}
	return out
}

// GTIDWaits counts read_your_writes waits (MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET) run on
// a replica before a read, because no replica was known to hold the session's writes.
func (m *Metrics) GTIDWaits() int64 { return m.gtidWaits.Load() }

// GTIDFallbacks counts read_your_writes decisions for the primary: a wait that timed out or
// failed, no replica close enough to wait on, or a write whose GTID could not be learned (the
// session then reads from the primary).
func (m *Metrics) GTIDFallbacks() int64 { return m.gtidFallbacks.Load() }

// PoolWaits reports, per node name, how long sessions waited for a backend connection.
func (s *Server) PoolWaits() map[string]pool.WaitStats {
	out := make(map[string]pool.WaitStats, len(s.nodeMap()))
	for name, np := range s.nodeMap() {
		out[name] = np.Waits()
	}
	return out
}
