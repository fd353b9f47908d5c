package buffer

import (
	"context"
	"errors"
	"net"

	"github.com/baton-proxy/baton/topology"
)

// Why a statement that needs the primary reached no backend. Both engines use them, so that the
// texts clients see are the same.
var (
	ErrNoPrimary  = errors.New("no primary is available; retry later")
	ErrWriteLease = errors.New("baton lost contact with etcd; writes are paused until it is back (reads go on)")
)

// NodeDown marks a failure to connect to a node that says the node is down or going away
// (refused, reset, shutting down), as opposed to, say, a wrong password. The engine decides.
type NodeDown struct{ Err error }

func (e *NodeDown) Error() string { return e.Err.Error() }
func (e *NodeDown) Unwrap() error { return e.Err }

// NetDown returns err as a NodeDown when it is a network failure (refused, reset, timed out),
// else err unchanged. The engines classify their servers' own "going away" errors first.
func NetDown(err error) error {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return &NodeDown{Err: err}
	}
	return err
}

// Holdable reports whether a statement that failed with err before reaching any backend may
// wait in the buffer for a (new) primary. The caller also checks that no transaction is open:
// its connection went with the old primary.
func Holdable(err error) bool {
	var nd *NodeDown
	return errors.Is(err, ErrNoPrimary) || errors.Is(err, ErrWriteLease) || errors.As(err, &nd)
}

// Hold is one statement's stay in the buffer: however often it waits (a new primary that
// refuses connections at first, say), it waits at most one window in all.
type Hold struct {
	b        *Buffer
	mayWrite func() bool
	ctx      context.Context
	cancel   context.CancelFunc
}

// Hold starts a statement's stay; mayWrite is the instance's write lease. End it with End.
func (b *Buffer) Hold(mayWrite func() bool) *Hold {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg().Window.D())
	return &Hold{b: b, mayWrite: mayWrite, ctx: ctx, cancel: cancel}
}

// End releases the hold's timer.
func (h *Hold) End() { h.cancel() }

// Wait blocks until a snapshot has a primary and the write lease holds. After cause, a
// NodeDown, the current snapshot — which still names the primary that failed — does not count.
// When it gives up while the lease is lost, the error is ErrWriteLease: the reason writes
// stopped is more use to a client than the buffer's bound.
func (h *Hold) Wait(cause error) error {
	var stale *topology.Snapshot
	var nd *NodeDown
	if errors.As(cause, &nd) {
		stale = h.b.live.Load()
		if f := h.b.nodeDown.Load(); f != nil {
			if p := stale.PrimaryNode(); p != nil {
				(*f)(p.Name)
			}
		}
	}
	_, err := h.b.Wait(h.ctx, func(sn *topology.Snapshot) bool {
		return sn != nil && sn != stale && sn.PrimaryNode() != nil && h.mayWrite()
	})
	if errors.Is(err, context.DeadlineExceeded) {
		err = ErrWindow
	}
	if err != nil && !h.mayWrite() {
		return ErrWriteLease
	}
	return err
}
