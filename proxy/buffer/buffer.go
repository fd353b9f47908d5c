package buffer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// Errors a held statement ends with. Their texts are shown to clients.
var (
	ErrFull     = errors.New("the failover buffer is full; retry later")
	ErrWindow   = errors.New("no primary became available within the failover buffer window; retry later")
	ErrTooLong  = errors.New("the primary has been unavailable longer than buffer.max_duration; retry later")
	ErrShutdown = errors.New("baton is shutting down")
)

// Buffer holds statements that need the primary while the cluster has none (a failover or a
// switchover in progress, or the instance cut off etcd) and releases them when one appears.
// Bounded three ways (topology.Buffer): how long one statement waits (window), how many wait at
// once (max_requests), and how long the primary may be missing before statements stop being
// held at all (max_duration). Safe for concurrent use.
type Buffer struct {
	live *topology.Live
	cfg  func() topology.Buffer

	held    atomic.Int64
	missing atomic.Int64 // unix nanos since when no usable primary was seen; 0 when one is

	// Counters for metrics.
	Buffered atomic.Int64 // statements that waited
	Released atomic.Int64 // ... and then found a primary
	Failed   atomic.Int64 // ... and gave up (full, window, max duration)

	mu   sync.Mutex
	stop chan struct{}

	nodeDown atomic.Pointer[func(node string)] // OnNodeDown's function
}

// OnNodeDown registers f, called (on the statement's goroutine; it must not block) with the
// name of the primary a statement could not reach because it looked down or gone (a NodeDown
// cause in Hold.Wait): the instance's health checker confirms at once rather than at its next
// probe round.
func (b *Buffer) OnNodeDown(f func(node string)) { b.nodeDown.Store(&f) }

// New returns a Buffer over live; cfg returns the current limits (they may be reloaded).
func New(live *topology.Live, cfg func() topology.Buffer) *Buffer {
	return &Buffer{live: live, cfg: cfg, stop: make(chan struct{})}
}

// Held is the number of statements waiting now.
func (b *Buffer) Held() int64 { return b.held.Load() }

// Seen records that a usable primary was just found without waiting: the outage, if any, is
// over (max_duration counts from the start of the next one).
func (b *Buffer) Seen() {
	if b.missing.Load() != 0 {
		b.missing.Store(0)
	}
}

// Close fails every waiting statement with ErrShutdown.
func (b *Buffer) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
}

// Wait blocks until usable(snapshot) holds, and returns that snapshot. It gives up with
// ErrFull, ErrWindow or ErrTooLong (bounds above), ErrShutdown, or ctx's error. A snapshot
// that is usable at once returns without counting as buffered.
func (b *Buffer) Wait(ctx context.Context, usable func(*topology.Snapshot) bool) (*topology.Snapshot, error) {
	ch := b.live.Changed()
	if s := b.live.Load(); usable(s) {
		b.missing.Store(0)
		return s, nil
	}
	cfg := b.cfg()
	now := time.Now()
	if !b.missing.CompareAndSwap(0, now.UnixNano()) {
		if since := time.Unix(0, b.missing.Load()); now.Sub(since) > cfg.MaxDuration.D() {
			b.Failed.Add(1)
			return nil, ErrTooLong
		}
	}
	if n := b.held.Add(1); cfg.MaxRequests > 0 && n > int64(cfg.MaxRequests) {
		b.held.Add(-1)
		b.Failed.Add(1)
		return nil, ErrFull
	}
	defer b.held.Add(-1)
	b.Buffered.Add(1)
	deadline := now.Add(cfg.Window.D())
	if end := time.Unix(0, b.missing.Load()).Add(cfg.MaxDuration.D()); end.Before(deadline) {
		deadline = end
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	// Snapshots are published on every probe round, so this re-checks at least that often.
	for {
		select {
		case <-ch:
		case <-t.C:
			b.Failed.Add(1)
			if time.Since(time.Unix(0, b.missing.Load())) >= cfg.MaxDuration.D() {
				return nil, ErrTooLong
			}
			return nil, ErrWindow
		case <-ctx.Done():
			b.Failed.Add(1)
			return nil, ctx.Err()
		case <-b.stop:
			b.Failed.Add(1)
			return nil, ErrShutdown
		}
		ch = b.live.Changed()
		if s := b.live.Load(); usable(s) {
			b.missing.Store(0)
			b.Released.Add(1)
			return s, nil
		}
	}
}
