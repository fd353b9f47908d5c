package admit

import (
	"hash/maphash"
	"io"
	"net"
	"sync"
	"time"
)

// Counts counts live sessions per name. The zero value is ready; safe for concurrent use.
type Counts struct {
	mu sync.Mutex
	m  map[string]int
}

// Acquire counts one more session for name unless max (> 0) are already counted; max ≤ 0 means
// no limit. On success it returns the function that ends the count (call it once).
func (c *Counts) Acquire(name string, max int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.m[name] >= max {
		return nil, false
	}
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[name]++
	var once sync.Once
	return func() { once.Do(func() { c.release(name) }) }, true
}

func (c *Counts) release(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[name] <= 1 {
		delete(c.m, name)
		return
	}
	c.m[name]--
}

// Count is the number of live sessions counted for name.
func (c *Counts) Count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

// Backoff slows down repeated failed logins from one client address: after Free failures
// within Window, each further login from the address waits First, doubling per failure, up to
// Max; failures older than Window are forgotten (a success does not reset them: an attacker
// with one valid account could otherwise interleave its logins). Addresses are hashed into a fixed table of buckets (an address that shares a bucket with
// an attacker's waits too), so memory does not grow with the number of addresses. The zero
// value is not usable: use NewBackoff. Safe for concurrent use.
type Backoff struct {
	free   int
	first  time.Duration
	max    time.Duration
	window time.Duration
	now    func() time.Time
	seed   maphash.Seed

	mu      sync.Mutex
	buckets [backoffBuckets]bucket
}

const backoffBuckets = 4096

type bucket struct {
	failures int
	last     time.Time
}

// Backoff defaults.
const (
	DefaultFree   = 10
	DefaultFirst  = 100 * time.Millisecond
	DefaultWindow = time.Minute
)

// NewBackoff returns a backoff whose delays grow to max (max ≤ 0: never a delay). now nil means
// time.Now.
func NewBackoff(max time.Duration, now func() time.Time) *Backoff {
	if now == nil {
		now = time.Now
	}
	return &Backoff{free: DefaultFree, first: DefaultFirst, max: max, window: DefaultWindow, now: now, seed: maphash.MakeSeed()}
}

// key is the bucket of a client address (its host; the port changes per connection).
func (b *Backoff) key(addr net.Addr) int {
	host := ""
	if addr != nil {
		host = addr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return int(maphash.String(b.seed, host) % backoffBuckets)
}

// Delay is how long a new login from addr waits before it is authenticated.
func (b *Backoff) Delay(addr net.Addr) time.Duration {
	if b == nil || b.max <= 0 {
		return 0
	}
	k := b.key(addr)
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := &b.buckets[k]
	if bk.failures <= b.free || b.now().Sub(bk.last) > b.window {
		return 0
	}
	d := b.first
	for i := b.free + 1; i < bk.failures && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// Failed records a failed login from addr.
func (b *Backoff) Failed(addr net.Addr) {
	if b == nil || b.max <= 0 {
		return
	}
	k := b.key(addr)
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := &b.buckets[k]
	now := b.now()
	if now.Sub(bk.last) > b.window {
		bk.failures = 0
	}
	bk.failures++
	bk.last = now
}

// FailureWriter passes writes to W; before the first write that isErr recognises as the error
// ending a failed login, it calls Failed. A backoff must count a failure before the client can
// read it: a client that retries at once would otherwise log in again before its failure counted.
type FailureWriter struct {
	W      io.Writer
	IsErr  func(p []byte) bool
	Failed func()
	done   bool
}

func (f *FailureWriter) Write(p []byte) (int, error) {
	if !f.done && f.IsErr(p) {
		f.done = true
		f.Failed()
	}
	return f.W.Write(p)
}

// Counted reports whether Failed has run (or Stop was called).
func (f *FailureWriter) Counted() bool { return f.done }

// Stop ends the watch: the login succeeded, later errors are not login failures.
func (f *FailureWriter) Stop() { f.done = true }
