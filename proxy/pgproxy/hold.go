package pgproxy

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baton-proxy/baton/proxy/buffer"
)

// mayHold: a unit that failed with err before reaching any backend may wait in the failover
// buffer — not inside a transaction (its connection went with the old primary).
func (s *session) mayHold(err error) bool {
	return s.txStatusNow() == 'I' && s.txConn == nil && buffer.Holdable(err)
}

// nodeDown marks err as a buffer.NodeDown when it says the node is unavailable (refused,
// reset, timed out, or PostgreSQL's 57P0x / 08xxx), not a bad password.
func nodeDown(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if len(pe.Code) == 5 && (pe.Code[:4] == "57P0" || pe.Code[:2] == "08") {
			return &buffer.NodeDown{Err: err}
		}
		return err
	}
	if backendTLSFailed(err) {
		return err // the node's TLS does not fit the server: no failover will fix that
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return &buffer.NodeDown{Err: err}
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
	for _, ss := range s.sessions {
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

// stillPrimary reports whether np is the primary of the newest snapshot.
func (srv *Server) stillPrimary(np *nodePool) bool {
	p := srv.live.Load().PrimaryNode()
	return p != nil && np != nil && p.Name == np.name
}
