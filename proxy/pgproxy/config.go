package pgproxy

import (
	"fmt"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/topology"
)

// serverState is what a configuration reload swaps as one: sessions read it once per use.
type serverState struct {
	cl        *topology.Cluster
	poolSizes map[string]int // backend user → its own pool size (users[].pool_size)
	nodes     map[string]*nodePool
	creds     map[string]*pgwire.Credential
	passwords map[string]string // backend user → password
}

// config is the cluster configuration in force.
func (s *Server) config() *topology.Cluster { return s.st.Load().cl }

// node returns the pool of a configured node (nil when the node is no longer configured).
func (s *Server) node(name string) *nodePool { return s.st.Load().nodes[name] }

// nodeMap returns the pools of the configured nodes. Do not modify it.
func (s *Server) nodeMap() map[string]*nodePool { return s.st.Load().nodes }

// apply installs cl: pools are kept for nodes whose name and address are unchanged, made for
// new ones, and closed (idle connections at once, busy ones when their sessions release them)
// for removed ones.
func (s *Server) apply(cl *topology.Cluster) {
	old := s.st.Load()
	st := &serverState{cl: cl, poolSizes: cl.PoolSizes(), nodes: map[string]*nodePool{}, creds: map[string]*pgwire.Credential{}, passwords: map[string]string{}}
	for _, u := range cl.Users {
		st.passwords[u.BackendUser] = u.BackendPassword.Reveal()
		st.creds[u.Name] = &pgwire.Credential{User: u.Name, Method: pgwire.AuthMethod(u.Auth), Password: u.Password.Reveal()}
	}
	for _, n := range cl.Nodes {
		if old != nil {
			if np := old.nodes[n.Name]; np != nil && np.addr == n.Address && np.tls.Same(n.TLS()) {
				st.nodes[n.Name] = np
				continue
			}
		}
		st.nodes[n.Name] = newNodePool(n, &cl.Pool, s.password, &s.pids)
		st.nodes[n.Name].dbu = &s.dbu
		st.nodes[n.Name].SetKeySize(func(k pool.Key) int { return s.st.Load().poolSizes[k.User] })
	}
	s.st.Store(st)
	if old != nil {
		for name, np := range old.nodes {
			if st.nodes[name] != np {
				np.CloseAll()
			}
		}
	}
}

// password returns the configured backend password of a backend user.
func (s *Server) password(user string) string { return s.st.Load().passwords[user] }

// Reconfigure applies a changed configuration of this cluster without dropping sessions: nodes
// added or removed, weights, drain, limits, consistency, users. The listener and the engine
// cannot change while running.
func (s *Server) Reconfigure(cl *topology.Cluster) error {
	cur := s.config()
	if cl.Name != cur.Name || cl.Engine != cur.Engine || cl.Listen != cur.Listen {
		return fmt.Errorf("cluster %s: name, engine and listen address change only with a restart", cur.Name)
	}
	s.apply(cl)
	return nil
}

// SetWriteGate installs the write-lease rule: while gate() is false, statements that may write
// are refused (reads go on). Call before Serve.
func (s *Server) SetWriteGate(gate func() bool) { s.writeGate = gate }

// mayWrite reports whether the write lease allows writes now.
func (s *Server) mayWrite() bool { return s.writeGate == nil || s.writeGate() }
