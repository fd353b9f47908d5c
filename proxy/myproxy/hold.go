package myproxy

import (
	"context"
	"errors"
	"net"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// Errors of units that reached no backend.
var (
	errNoPrimary  = errors.New("no primary is available; retry later")
	errWriteLease = errors.New("baton lost contact with etcd; writes are paused until it is back (reads go on)")
)

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

// wait blocks until a snapshot has a usable primary. After a connection failure (cause is an
// acquireError) the current snapshot, which still names the failed primary, does not count.
func (h *holding) wait(s *session, cause error) error {
	var stale *topology.Snapshot
	var ae *acquireError
	if errors.As(cause, &ae) {
		stale = s.srv.live.Load()
	}
	_, err := s.srv.buf.Wait(h.ctx, func(sn *topology.Snapshot) bool {
		return sn != nil && sn != stale && sn.PrimaryNode() != nil && s.srv.mayWrite()
	})
	if errors.Is(err, context.DeadlineExceeded) {
		err = buffer.ErrWindow
	}
	if err != nil && !s.srv.mayWrite() {
		return errWriteLease // the reason writes stopped: more useful than the buffer's bound
	}
	return err
}

// mayHold: a unit that failed with err before reaching any backend may wait for a primary — not
// inside a transaction (its connection went with the old primary).
func (s *session) mayHold(err error) bool {
	if s.inTx || s.txConn != nil {
		return false
	}
	if errors.Is(err, errNoPrimary) || errors.Is(err, errWriteLease) {
		return true
	}
	var ae *acquireError
	return errors.As(err, &ae)
}

// acquireError marks a failure to connect that says the node is down or going away (refused,
// reset, timed out; MariaDB 1053 server shutdown, 1927 connection killed), not a bad password.
type acquireError struct{ err error }

func (e *acquireError) Error() string { return e.err.Error() }
func (e *acquireError) Unwrap() error { return e.err }

func nodeDown(err error) error {
	if err == nil {
		return nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		if me.Number == 1053 || me.Number == 1927 || me.Number == 2013 || me.Number == 2006 {
			return &acquireError{err}
		}
		return err
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return &acquireError{err}
	}
	return err
}

// DropIdle closes the pooled idle connections to a node (it stopped being the primary).
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
	for ss := range s.sessions {
		if ss.txOn.Load() == np {
			n++
		}
	}
	return n
}

// Buffer is the server's failover buffer.
func (s *Server) Buffer() *buffer.Buffer { return s.buf }

// CutNode closes every connection to a node, busy ones included (the node stopped being the
// primary: DESIGN §3 step 2). It returns how many were open.
func (s *Server) CutNode(node string) int {
	if np := s.node(node); np != nil {
		np.DropIdle()
		return np.cutAll()
	}
	return 0
}
