package dbusers

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCacheTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New[string](30*time.Second, 10, WithClock(clk.now))
	var calls atomic.Int32
	secret := "v1"
	exists := true
	lookup := func(user string) (string, bool, error) {
		calls.Add(1)
		return secret, exists, nil
	}
	for _, tc := range []struct {
		name      string
		advance   time.Duration
		setSecret string
		setExists bool
		want      string
		wantFound bool
		wantCalls int32
	}{
		{"first lookup", 0, "v1", true, "v1", true, 1},
		{"cached", 10 * time.Second, "v2", true, "v1", true, 1},
		{"still cached just before the TTL", 19*time.Second + 999*time.Millisecond, "v2", true, "v1", true, 1},
		{"expired: the new value", time.Millisecond, "v2", true, "v2", true, 2},
		{"dropped, old answer cached", time.Second, "", false, "v2", true, 2},
		{"dropped, after the TTL", 30 * time.Second, "", false, "", false, 3},
		{"negative answer cached", time.Second, "v3", true, "", false, 3},
		{"recreated, after the TTL", 30 * time.Second, "v3", true, "v3", true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.add(tc.advance)
			secret, exists = tc.setSecret, tc.setExists
			v, found, err := c.Get("alice", lookup)
			if err != nil || v != tc.want || found != tc.wantFound || calls.Load() != tc.wantCalls {
				t.Fatalf("got %q %v %v after %d lookups; want %q %v after %d", v, found, err, calls.Load(), tc.want, tc.wantFound, tc.wantCalls)
			}
		})
	}
}

// A failed lookup is not cached; concurrent Gets of one name share one lookup.
func TestCacheErrorsAndCoalescing(t *testing.T) {
	c := New[int](time.Minute, 10)
	var calls atomic.Int32
	fail := func(string) (int, bool, error) { calls.Add(1); return 0, false, errors.New("down") }
	for range 2 {
		if _, _, err := c.Get("u", fail); err == nil {
			t.Fatal("want the lookup error")
		}
	}
	if calls.Load() != 2 || c.Len() != 0 {
		t.Fatalf("errors cached: %d lookups, %d entries", calls.Load(), c.Len())
	}
	release := make(chan struct{})
	calls.Store(0)
	slow := func(string) (int, bool, error) { calls.Add(1); <-release; return 7, true, nil }
	var wg sync.WaitGroup
	results := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			v, _, _ := c.Get("u", slow)
			results <- v
		})
	}
	for c.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != 7 {
			t.Fatalf("got %d", v)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d lookups for 20 concurrent Gets; want 1", calls.Load())
	}
}

// Probing many names keeps at most max answers; Forget drops one.
func TestCacheBound(t *testing.T) {
	c := New[int](time.Hour, 100)
	none := func(string) (int, bool, error) { return 0, false, nil }
	for i := range 10000 {
		c.Get(fmt.Sprint("probe", i), none)
	}
	if c.Len() != 100 {
		t.Fatalf("%d cached names; want 100", c.Len())
	}
	var calls int
	c.Get("probe9999", func(string) (int, bool, error) { calls++; return 0, false, nil })
	if calls != 0 {
		t.Fatal("the newest answer was evicted")
	}
	c.Forget("probe9999")
	c.Get("probe9999", func(string) (int, bool, error) { calls++; return 0, false, nil })
	if calls != 1 {
		t.Fatal("Forget did not drop the answer")
	}
}
