package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// sizedNode is a pool of fake connections with PgBouncer-style sizing.
func sizedNode(size, maxPerNode, reserve int, reserveTimeout, acquireTimeout time.Duration) (*Node[*fakeConn], *atomic.Int64) {
	cfg := &topology.Pool{Size: size, MaxPerNode: maxPerNode, ReserveSize: reserve,
		ReserveTimeout: topology.Duration(reserveTimeout), AcquireTimeout: topology.Duration(acquireTimeout),
		ConnectTimeout: topology.Duration(time.Second), IdleTimeout: topology.Duration(time.Minute)}
	var dials atomic.Int64
	n := NewNode(cfg, func(ctx context.Context, k Key) (*fakeConn, error) {
		return &fakeConn{id: int(dials.Add(1))}, nil
	}, func(*fakeConn) bool { return true })
	return n, &dials
}

// queued waits until q Acquire calls are queued.
func queued(t *testing.T, n *Node[*fakeConn], q int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Queued() != q {
		if time.Now().After(deadline) {
			t.Fatalf("%d queued, want %d", n.Queued(), q)
		}
		time.Sleep(time.Millisecond)
	}
}

type acquired struct {
	who int
	c   *fakeConn
	err error
}

// Sessions queued for a key get its returned connections in arrival order, one per release:
// the others stay queued (no herd woken to fight over it).
func TestQueueIsFirstComeFirstServed(t *testing.T) {
	n, dials := sizedNode(1, 10, 0, 0, 5*time.Second)
	k := Key{User: "u", Database: "d"}
	held, err := n.Acquire(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 50
	got := make(chan acquired, waiters)
	for i := range waiters {
		go func() {
			c, err := n.Acquire(context.Background(), k)
			got <- acquired{i, c, err}
		}()
		queued(t, n, i+1) // the i-th arrives i-th
	}
	c := held
	for i := range waiters {
		n.Release(c, k, true)
		a := <-got
		if a.err != nil || a.who != i || a.c != held {
			t.Fatalf("release %d went to waiter %d (conn %v, err %v); want waiter %d with the same connection", i, a.who, a.c == held, a.err, i)
		}
		if q := n.Queued(); q != waiters-1-i {
			t.Fatalf("after release %d: %d queued, want %d (one wake-up per release)", i, q, waiters-1-i)
		}
		c = a.c
	}
	n.Release(c, k, true)
	if dials.Load() != 1 {
		t.Fatalf("%d dials; want 1 (pool.size 1)", dials.Load())
	}
	if open, idle := n.Stats(); open != 1 || idle != 1 {
		t.Fatalf("open %d idle %d; want 1 and 1", open, idle)
	}
}

// pool.size bounds each key; keys do not share the bound (only max_per_node).
func TestSizePerKey(t *testing.T) {
	n, _ := sizedNode(2, 10, 0, 0, 40*time.Millisecond)
	a, b := Key{User: "a", Database: "d"}, Key{User: "b", Database: "d"}
	for range 2 {
		if _, err := n.Acquire(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	_, err := n.Acquire(context.Background(), a)
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) || te.Setting != "pool.size" || te.Open != 2 {
		t.Fatalf("third connection of one key: %v; want a timeout naming pool.size with 2 open", err)
	}
	for _, want := range []string{"all 2 connections", `user "a", database "d"`, "raise pool.size", "pool.size 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if _, err := n.Acquire(context.Background(), b); err != nil {
		t.Fatalf("another key is held back by pool.size of the first: %v", err)
	}
}

// max_per_node bounds all keys together: a session of another key queued on a full node gets the
// room of the next connection returned idle (which is closed for it) or closed.
func TestMaxPerNodeAcrossKeys(t *testing.T) {
	n, _ := sizedNode(5, 2, 0, 0, 5*time.Second)
	a, b := Key{User: "a"}, Key{User: "b"}
	a1, _ := n.Acquire(context.Background(), a)
	a2, _ := n.Acquire(context.Background(), a)
	got := make(chan acquired, 1)
	go func() {
		c, err := n.Acquire(context.Background(), b)
		got <- acquired{0, c, err}
	}()
	queued(t, n, 1)
	n.Release(a1, a, true) // nobody of a waits: it goes idle, and is closed for b's room
	r := <-got
	if r.err != nil || r.c == a1 || !a1.closed.Load() {
		t.Fatalf("b got %v (err %v), a1 closed %v; want a new connection after a1 was closed", r.c, r.err, a1.closed.Load())
	}
	if open, idle := n.Stats(); open != 2 || idle != 0 {
		t.Fatalf("open %d idle %d; want 2 and 0", open, idle)
	}
	// Full with nothing idle: the error names max_per_node.
	n.cfg.AcquireTimeout = topology.Duration(30 * time.Millisecond)
	_, err := n.Acquire(context.Background(), Key{User: "c"})
	var te *TimeoutError
	if !errors.As(err, &te) || te.Setting != "pool.max_per_node" || !strings.Contains(err.Error(), "raise pool.max_per_node") {
		t.Fatalf("full node: %v; want a timeout naming pool.max_per_node", err)
	}
	n.Release(a2, a, false)
	n.Release(r.c, b, true)
}

// A session queued for reserve_timeout may open up to reserve_size connections above size;
// a reserve connection returned when nobody is queued is closed.
func TestReserve(t *testing.T) {
	n, dials := sizedNode(1, 10, 1, 30*time.Millisecond, 300*time.Millisecond)
	k := Key{User: "u"}
	c1, _ := n.Acquire(context.Background(), k)
	start := time.Now()
	c2, err := n.Acquire(context.Background(), k)
	if err != nil || c2 == c1 || dials.Load() != 2 {
		t.Fatalf("no reserve connection: %v, dials %d", err, dials.Load())
	}
	if w := time.Since(start); w < 30*time.Millisecond || w > 250*time.Millisecond {
		t.Fatalf("the reserve connection came after %v; want about the reserve timeout (30ms)", w)
	}
	// Size and reserve in use: the next one times out, saying both.
	_, err = n.Acquire(context.Background(), k)
	if err == nil || !strings.Contains(err.Error(), "pool.size 1 + pool.reserve_size 1") || !strings.Contains(err.Error(), "all 2 connections") {
		t.Fatalf("size and reserve in use: %v", err)
	}
	n.Release(c2, k, true) // nobody queued, above size: closed
	if !c2.closed.Load() {
		t.Fatal("a reserve connection returned with nobody queued was kept")
	}
	n.Release(c1, k, true)
	if c1.closed.Load() {
		t.Fatal("a connection within pool.size was closed on release")
	}
	if open, idle := n.Stats(); open != 1 || idle != 1 {
		t.Fatalf("open %d idle %d; want 1 and 1", open, idle)
	}
}

// A failed dial gives its room to the next queued session; an ended context takes a session
// out of the queue; CloseAll fails the queued ones.
func TestDialFailureCancelAndClose(t *testing.T) {
	cfg := &topology.Pool{Size: 1, MaxPerNode: 10, AcquireTimeout: topology.Duration(5 * time.Second),
		ConnectTimeout: topology.Duration(time.Second)}
	var fail atomic.Bool
	n := NewNode(cfg, func(ctx context.Context, k Key) (*fakeConn, error) {
		if fail.CompareAndSwap(true, false) { // the next dial fails
			return nil, errors.New("refused")
		}
		return &fakeConn{}, nil
	}, func(*fakeConn) bool { return true })
	k := Key{User: "u"}
	c, _ := n.Acquire(context.Background(), k)
	got := make(chan acquired, 3)
	for i := range 2 {
		go func() {
			c, err := n.Acquire(context.Background(), k)
			got <- acquired{i, c, err}
		}()
		queued(t, n, i+1)
	}
	fail.Store(true)
	n.Release(c, k, false) // closed: room to dial for waiter 0, whose dial fails
	// Both answers arrive; in which order depends on the scheduler (waiter 1 may dial and
	// return before waiter 0 has returned its error).
	res := map[int]acquired{}
	for range 2 {
		r := <-got
		res[r.who] = r
	}
	if r := res[0]; r.err == nil || r.err.Error() != "refused" {
		t.Fatalf("first waiter: %+v; want the dial error", r)
	}
	if r := res[1]; r.err != nil || r.c == nil { // the failed dial's room went on to waiter 1
		t.Fatalf("second waiter: %+v; want a connection", r)
	}
	c = res[1].c

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := n.Acquire(ctx, k)
		got <- acquired{2, nil, err}
	}()
	queued(t, n, 1)
	cancel()
	if r := <-got; !errors.Is(r.err, context.Canceled) || n.Queued() != 0 {
		t.Fatalf("cancelled waiter: %v, %d still queued", r.err, n.Queued())
	}

	go func() {
		_, err := n.Acquire(context.Background(), k)
		got <- acquired{3, nil, err}
	}()
	queued(t, n, 1)
	n.CloseAll()
	if r := <-got; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("queued through CloseAll: %v; want ErrClosed", r.err)
	}
	n.Release(c, k, true)
	if !c.closed.Load() {
		t.Fatal("released after CloseAll but not closed")
	}
}

// Many sessions of several keys hammer a small pool (run with -race): every Acquire succeeds,
// no key ever holds more than size + reserve, the node never more than max_per_node, and at the
// end every connection is idle and accounted for.
func TestPoolStress(t *testing.T) {
	const size, maxPerNode, reserve = 3, 7, 1
	n, _ := sizedNode(size, maxPerNode, reserve, 2*time.Millisecond, 20*time.Second)
	keys := []Key{{User: "a"}, {User: "b"}, {User: "c"}}
	var mu sync.Mutex
	busy := map[Key]int{}
	total := 0
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 200 {
				k := keys[r.IntN(len(keys))]
				c, err := n.Acquire(context.Background(), k)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mu.Lock()
				busy[k]++
				total++
				if busy[k] > size+reserve || total > maxPerNode {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("key %v holds %d, node %d", k, busy[k], total))
					errs.Add(1)
				}
				mu.Unlock()
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
				}
				mu.Lock()
				busy[k]--
				total--
				mu.Unlock()
				n.Release(c, k, r.IntN(10) != 0) // now and then a broken one
			}
		})
	}
	wg.Wait()
	if errs.Load() > 0 {
		t.Fatalf("%d failures, first: %v", errs.Load(), firstErr.Load())
	}
	open, idle := n.Stats()
	if open != idle || open > maxPerNode || n.Queued() != 0 {
		t.Fatalf("open %d idle %d queued %d at the end", open, idle, n.Queued())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.live) != open || len(n.waiting) != 0 {
		t.Fatalf("%d live connections for %d open; %d keys waiting", len(n.live), open, len(n.waiting))
	}
}

// 2,000 sessions queued on one connection: each release wakes one of them, so handing the
// connection down the whole queue takes about as long as 2,000 uncontended hand-offs.
func BenchmarkHandOff(b *testing.B) {
	n, _ := sizedNode(1, 1, 0, 0, time.Minute)
	k := Key{User: "u"}
	for b.Loop() {
		c, _ := n.Acquire(context.Background(), k)
		var wg sync.WaitGroup
		const waiters = 2000
		for range waiters {
			wg.Go(func() {
				c, err := n.Acquire(context.Background(), k)
				if err == nil {
					n.Release(c, k, true)
				}
			})
		}
		for n.Queued() < waiters {
			time.Sleep(time.Millisecond)
		}
		n.Release(c, k, true)
		wg.Wait()
	}
}

// The histogram has a counter per bucket and one above the last.
func TestWaitBucketsFit(t *testing.T) {
	var h waitHist
	if len(h.counts) != len(WaitBuckets)+1 || !slices.IsSorted(WaitBuckets) {
		t.Fatalf("%d counters for %d buckets (sorted %v)", len(h.counts), len(WaitBuckets), slices.IsSorted(WaitBuckets))
	}
}

// A connection released under another key than it was acquired for is closed: it counts
// against the key it was dialed for and cannot be filed under the other.
func TestReleaseUnderAnotherKeyCloses(t *testing.T) {
	n, _ := sizedNode(2, 10, 0, 0, time.Second)
	c, _ := n.Acquire(context.Background(), Key{User: "a"})
	n.Release(c, Key{User: "b"}, true)
	if !c.closed.Load() {
		t.Fatal("a connection released under another key was kept")
	}
	if open, idle := n.Stats(); open != 0 || idle != 0 {
		t.Fatalf("open %d idle %d; want 0 and 0", open, idle)
	}
}
