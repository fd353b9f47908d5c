package pgproxy

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/topology"
)

// errNoPrimary: the cluster has no node taking writes right now.
var errNoPrimary = errors.New("no primary is available; retry later")

// holding is one unit's stay in the failover buffer: however often it waits, it waits at most
// one buffer window in all.
type holding struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (s *session) startHold() *holding {
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.config().Buffer.Window.D())
	return &holding{ctx: ctx, cancel: cancel}
}

func (h *holding) end() { h.cancel() }

// wait blocks until a snapshot other than stale has a primary and the write lease holds.
func (h *holding) wait(s *session, stale *topology.Snapshot) error {
	_, err := s.srv.buf.Wait(h.ctx, func(sn *topology.Snapshot) bool {
		return sn != nil && sn != stale && sn.PrimaryNode() != nil && s.srv.mayWrite()
	})
	if errors.Is(err, context.DeadlineExceeded) {
		err = errors.New("no primary became available within the failover buffer window; retry later")
	}
	if err != nil && !s.srv.mayWrite() {
		return errWriteLease // the reason writes stopped: more useful than the buffer's bound
	}
	return err
}

// mayHold: a unit that failed with err before reaching any backend may wait for a primary. Not
// inside a transaction (its connection is gone with the old primary), and not when the failure
// is not about the primary being unavailable.
func (s *session) mayHold(err error) bool {
	if s.txStatusNow() != 'I' || s.txConn != nil {
		return false
	}
	if errors.Is(err, errNoPrimary) || errors.Is(err, errWriteLease) {
		return true
	}
	// A primary that refuses or drops connections before the health check notices.
	var ae *acquireError
	return errors.As(err, &ae)
}

// acquireError marks a failure to connect to a node that says the node is down or going away
// (refused, reset, timed out, or PostgreSQL's 57P0x / 08xxx), as opposed to a bad password.
type acquireError struct{ err error }

func (e *acquireError) Error() string { return e.err.Error() }
func (e *acquireError) Unwrap() error { return e.err }

// nodeDown wraps err as an acquireError when it says the node is unavailable.
func nodeDown(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if len(pe.Code) == 5 && (pe.Code[:4] == "57P0" || pe.Code[:2] == "08") {
			return &acquireError{err}
		}
		return err
	}
	var ne net.Error
	var oe *net.OpError
	var ce *pgconn.ConnectError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &ce) {
		return &acquireError{err}
	}
	return err
}

// DropIdle closes the pooled idle connections to a node: called when the node stops being the
// primary, so that no session picks up a connection the fence is about to kill.
func (s *Server) DropIdle(node string) {
	if np := s.node(node); np != nil {
		np.DropIdle()
	}
}

// TxOn counts the sessions with a transaction open on a node (a switchover waits for them).
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

// Buffer is the server's failover buffer.
func (s *Server) Buffer() *buffer.Buffer { return s.buf }

// closedByPeer reports whether an idle connection's server has closed it (or sent something
// while idle, which on an idle connection means a FATAL before closing). It reads nothing: a
// zero-deadline peek.
func (b *backend) closedByPeer() bool {
	if b.conn == nil {
		return true
	}
	b.conn.SetReadDeadline(time.Now())
	_, err := b.rd.Peek1()
	b.conn.SetReadDeadline(time.Time{})
	if err == nil {
		return true
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// CutNode closes every connection to a node, busy ones included (the node stopped being the
// primary: DESIGN §3 step 2). It returns how many were open.
func (s *Server) CutNode(node string) int {
	if np := s.node(node); np != nil {
		np.DropIdle()
		return np.cutAll()
	}
	return 0
}
