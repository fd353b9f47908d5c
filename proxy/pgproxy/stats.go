package pgproxy

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

// PoolWaits reports, per node name, how long sessions waited for a backend connection.
func (s *Server) PoolWaits() map[string]pool.WaitStats {
	out := make(map[string]pool.WaitStats, len(s.nodeMap()))
	for name, np := range s.nodeMap() {
		out[name] = np.Waits()
	}
	return out
}
