package pool

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

type fakeConn struct {
	id     int
	closed atomic.Bool
}

func (f *fakeConn) Close() { f.closed.Store(true) }

func (f *fakeConn) NetConn() net.Conn { return nil }

func newTestNode(max int, resetOK bool) (*Node[*fakeConn], *atomic.Int64) {
	cfg := &topology.Pool{MaxPerNode: max, AcquireTimeout: topology.Duration(50 * time.Millisecond),
		ConnectTimeout: topology.Duration(time.Second), IdleTimeout: topology.Duration(time.Minute)}
	var dials atomic.Int64
	n := NewNode(cfg, func(ctx context.Context, k Key) (*fakeConn, error) {
		return &fakeConn{id: int(dials.Add(1))}, nil
	}, func(*fakeConn) bool { return resetOK })
	return n, &dials
}

func TestReuseSameKey(t *testing.T) {
	n, dials := newTestNode(2, true)
	k := Key{User: "u", Database: "d"}
	c, err := n.Acquire(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	n.Release(c, k, true)
	c2, _ := n.Acquire(context.Background(), k)
	if c2 != c || dials.Load() != 1 {
		t.Fatalf("not reused: dials=%d", dials.Load())
	}
	// Another key dials its own.
	c3, _ := n.Acquire(context.Background(), Key{User: "v", Database: "d"})
	if c3 == c || dials.Load() != 2 {
		t.Fatal("other key reused a connection")
	}
}

func TestBoundEvictsIdleOfOtherKeyAndTimesOut(t *testing.T) {
	n, _ := newTestNode(1, true)
	a, _ := n.Acquire(context.Background(), Key{User: "a", Database: "d"})
	n.Release(a, Key{User: "a", Database: "d"}, true)
	b, err := n.Acquire(context.Background(), Key{User: "b", Database: "d"})
	if err != nil || !a.closed.Load() {
		t.Fatalf("idle connection of another key not evicted: %v", err)
	}
	start := time.Now()
	if _, err := n.Acquire(context.Background(), Key{User: "c", Database: "d"}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Fatal("did not wait for the acquire timeout")
	}
	n.Release(b, Key{User: "b", Database: "d"}, false)
	if !b.closed.Load() {
		t.Fatal("unreusable connection not closed")
	}
	if open, _ := n.Stats(); open != 0 {
		t.Fatalf("open = %d after closing everything", open)
	}
}

func TestFailedResetCloses(t *testing.T) {
	n, _ := newTestNode(2, false)
	c, _ := n.Acquire(context.Background(), Key{User: "a", Database: "d"})
	n.Release(c, Key{User: "a", Database: "d"}, true)
	if !c.closed.Load() {
		t.Fatal("a connection whose reset failed was pooled")
	}
}

func TestReapAndCloseAll(t *testing.T) {
	n, _ := newTestNode(3, true)
	k := Key{User: "a", Database: "d"}
	c1, _ := n.Acquire(context.Background(), k)
	c2, _ := n.Acquire(context.Background(), k)
	n.Release(c1, k, true)
	n.Reap(time.Now().Add(2 * time.Minute))
	if !c1.closed.Load() {
		t.Fatal("idle connection not reaped")
	}
	n.CloseAll()
	n.Release(c2, k, true)
	if !c2.closed.Load() {
		t.Fatal("released after CloseAll but not closed")
	}
	if _, err := n.Acquire(context.Background(), k); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire after CloseAll: %v", err)
	}
}

// DropIdle closes the idle connections only; busy ones stay with their owners and the pool dials
// afresh for the next Acquire.
func TestDropIdleLeavesBusy(t *testing.T) {
	n, dials := newTestNode(4, true)
	k := Key{User: "u"}
	busy, _ := n.Acquire(context.Background(), k)
	i1, _ := n.Acquire(context.Background(), k)
	i2, _ := n.Acquire(context.Background(), Key{User: "v"})
	n.Release(i1, k, true)
	n.Release(i2, Key{User: "v"}, true)
	if got := n.DropIdle(); got != 2 {
		t.Fatalf("DropIdle closed %d, want the 2 idle connections", got)
	}
	if !i1.closed.Load() || !i2.closed.Load() || busy.closed.Load() {
		t.Fatalf("closed: idle %v %v, busy %v; want the idle ones only", i1.closed.Load(), i2.closed.Load(), busy.closed.Load())
	}
	if open, idle := n.Stats(); open != 1 || idle != 0 {
		t.Fatalf("open %d idle %d after DropIdle; want 1 and 0", open, idle)
	}
	c, err := n.Acquire(context.Background(), k)
	if err != nil || c == i1 || dials.Load() != 4 {
		t.Fatalf("Acquire after DropIdle: %v, reused a dropped connection %v, dials %d", err, c == i1, dials.Load())
	}
}

// ServerLifetime: a connection older than the lifetime is closed when it is checked in or out
// (never while handed out); 0 keeps connections however old.
func TestServerLifetime(t *testing.T) {
	k := Key{User: "u"}
	for _, tc := range []struct {
		name string
		life time.Duration
		// what happens to a connection opened at 0 when it is released and re-acquired later
		releaseAt, acquireAt time.Duration
		wantReused           bool
		wantClosedOnRelease  bool
	}{
		{"young", time.Hour, time.Minute, 2 * time.Minute, true, false},
		{"expires while idle", time.Hour, time.Minute, time.Hour, false, false},
		{"expired in use", time.Hour, time.Hour + time.Second, time.Hour + 2*time.Second, false, true},
		{"unlimited", 0, 100 * time.Hour, 200 * time.Hour, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, dials := newTestNode(2, true)
			n.cfg.ServerLifetime = topology.Duration(tc.life)
			n.cfg.IdleTimeout = topology.Duration(1000 * time.Hour)
			start := time.Now()
			now := start
			n.now = func() time.Time { return now }
			c, _ := n.Acquire(context.Background(), k)
			now = start.Add(tc.releaseAt)
			n.Release(c, k, true)
			if c.closed.Load() != tc.wantClosedOnRelease {
				t.Fatalf("closed on release: %v, want %v", c.closed.Load(), tc.wantClosedOnRelease)
			}
			now = start.Add(tc.acquireAt)
			c2, err := n.Acquire(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			if (c2 == c) != tc.wantReused || (dials.Load() == 1) != tc.wantReused {
				t.Fatalf("reused %v (dials %d), want %v", c2 == c, dials.Load(), tc.wantReused)
			}
			if !tc.wantReused && !c.closed.Load() {
				t.Fatal("the expired connection was not closed")
			}
			if open, _ := n.Stats(); open != 1 {
				t.Fatalf("open %d; want 1", open)
			}
		})
	}
	t.Run("reap", func(t *testing.T) {
		n, _ := newTestNode(2, true)
		n.cfg.ServerLifetime = topology.Duration(time.Hour)
		n.cfg.IdleTimeout = topology.Duration(1000 * time.Hour)
		c, _ := n.Acquire(context.Background(), k)
		n.Release(c, k, true)
		n.Reap(time.Now().Add(30 * time.Minute))
		if c.closed.Load() {
			t.Fatal("reaped a young connection")
		}
		n.Reap(time.Now().Add(61 * time.Minute))
		if !c.closed.Load() {
			t.Fatal("an idle connection past its lifetime was not reaped")
		}
	})
}

func TestWaitHistogram(t *testing.T) {
	n, _ := newTestNode(1, true)
	n.cfg.AcquireTimeout = topology.Duration(5 * time.Second)
	k := Key{User: "u", Database: "d"}
	a, err := n.Acquire(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		c, err := n.Acquire(context.Background(), k) // waits for a to come back
		if err == nil && c != a {
			err = errors.New("the waiter did not get the returned connection")
		}
		got <- err
	}()
	time.Sleep(60 * time.Millisecond) // the waiter is queued: this is the wait being measured
	n.Release(a, k, true)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	w := n.Waits()
	if w.Count != 2 || w.Sum < 0.05 {
		t.Fatalf("count %d sum %.3fs; want 2 waits, one of at least 50 ms", w.Count, w.Sum)
	}
	// One wait was at most 0.1 ms-ish (the first), one between 50 ms and 0.5 s.
	if slow := w.Cumulative[len(w.Cumulative)-1] - w.Cumulative[slices.Index(WaitBuckets, 0.05)]; slow != 1 {
		t.Fatalf("waits above 50 ms: %d (cumulative %v); want 1", slow, w.Cumulative)
	}
}

// A key with its own size (users[].pool_size) is bounded by it, beside keys on pool.size, and
// the timeout names the setting to raise.
func TestKeySize(t *testing.T) {
	n, _ := newTestNode(10, true)
	n.cfg.Size = 3
	n.SetKeySize(func(k Key) int {
		if k.User == "small" {
			return 1
		}
		return 0
	})
	small := Key{User: "small", Database: "d"}
	c, err := n.Acquire(context.Background(), small)
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Acquire(context.Background(), small)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Setting != "users[].pool_size" || te.Size != 1 || !strings.Contains(err.Error(), "raise users[].pool_size") {
		t.Fatalf("second connection of a key sized 1: %v; want a timeout naming users[].pool_size", err)
	}
	other := Key{User: "big", Database: "d"}
	var held []*fakeConn
	for range 3 {
		o, err := n.Acquire(context.Background(), other)
		if err != nil {
			t.Fatalf("a key on pool.size 3: %v", err)
		}
		held = append(held, o)
	}
	if _, err := n.Acquire(context.Background(), other); !errors.As(err, &te) || te.Setting != "pool.size" {
		t.Fatalf("fourth connection of a key on pool.size 3: %v", err)
	}
	n.Release(c, small, true)
	for _, o := range held {
		n.Release(o, other, true)
	}
}
