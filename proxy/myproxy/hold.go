package myproxy

import (
	"errors"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/go-sql-driver/mysql"
)

// mayHold: a unit that failed with err before reaching any backend may wait in the failover
// buffer — not inside a transaction (its connection went with the old primary).
func (s *session) mayHold(err error) bool {
	return !s.inTx && s.txConn == nil && buffer.Holdable(err)
}

// nodeDown marks err as a buffer.NodeDown when it says the node is down or going away
// (refused, reset, timed out; MariaDB 1053 server shutdown, 1927 connection killed, 2006/2013
// gone away / lost), not a bad password.
func nodeDown(err error) error {
	if err == nil {
		return nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		if me.Number == 1053 || me.Number == 1927 || me.Number == 2013 || me.Number == 2006 {
			return &buffer.NodeDown{Err: err}
		}
		return err
	}
	return buffer.NetDown(err)
}

// TxOn counts the sessions with a statement or transaction running on a node (a switchover
// waits for them).
func (s *Server) TxOn(node string) int {
	np := s.node(node)
	if np == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ss := range s.sessions {
		if ss.txOn.Load() == np {
			n++
		}
	}
	return n
}

// CutNode closes every connection to a node, busy ones included (the node stopped being the
// primary: DESIGN §3 step 2). It returns how many were open.
func (s *Server) CutNode(node string) int {
	if np := s.node(node); np != nil {
		return np.Cut()
	}
	return 0
}

// Buffer is the server's failover buffer.
func (s *Server) Buffer() *buffer.Buffer { return s.buf }
