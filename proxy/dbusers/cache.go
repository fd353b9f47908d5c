package dbusers

import (
	"container/list"
	"errors"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// Lookup asks the database for user. found == false with a nil error means the database says
// the user may not log in (unknown, NOLOGIN, expired): that answer is cached too. An error
// (database unreachable) is not cached.
type Lookup[T any] func(user string) (val T, found bool, err error)

// Cache is a TTL cache of user lookups. The zero value is not usable: use New. Safe for
// concurrent use.
type Cache[T any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	m     map[string]*list.Element // → *entry[T]
	order list.List                // oldest answer first
}

type entry[T any] struct {
	user  string
	done  chan struct{} // closed when the lookup finished
	val   T
	found bool
	err   error
	at    time.Time
}

// Option configures a Cache.
type Option func(*options)

type options struct{ now func() time.Time }

// WithClock makes the cache read the time from now (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns a cache that keeps each answer for ttl and at most max names (oldest dropped).
func New[T any](ttl time.Duration, max int, opts ...Option) *Cache[T] {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if max < 1 {
		max = 1
	}
	return &Cache[T]{ttl: ttl, max: max, now: o.now, m: map[string]*list.Element{}}
}

// Get returns the cached answer for user, or runs lookup (once for all callers asking for the
// same user at the same time) when there is none or it is older than the TTL.
func (c *Cache[T]) Get(user string, lookup Lookup[T]) (val T, found bool, err error) {
	c.mu.Lock()
	if el, ok := c.m[user]; ok {
		e := el.Value.(*entry[T])
		select {
		case <-e.done:
			if c.now().Sub(e.at) < c.ttl {
				c.mu.Unlock()
				return e.val, e.found, nil
			}
			c.removeLocked(el)
		default:
			c.mu.Unlock()
			<-e.done
			return e.val, e.found, e.err
		}
	}
	e := &entry[T]{user: user, done: make(chan struct{})}
	for c.order.Len() >= c.max {
		c.removeLocked(c.order.Front())
	}
	el := c.order.PushBack(e)
	c.m[user] = el
	c.mu.Unlock()

	e.val, e.found, e.err = lookup(user)
	c.mu.Lock()
	e.at = c.now()
	close(e.done)
	if e.err != nil {
		// Not cached: the next login asks again.
		if cur, ok := c.m[user]; ok && cur == el {
			c.removeLocked(el)
		}
	}
	c.mu.Unlock()
	return e.val, e.found, e.err
}

// Forget drops the answer for user, so that the next Get asks the database.
func (c *Cache[T]) Forget(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[user]; ok {
		c.removeLocked(el)
	}
}

// Len is the number of cached names (lookups in flight included).
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *Cache[T]) removeLocked(el *list.Element) {
	e := el.Value.(*entry[T])
	c.order.Remove(el)
	if c.m[e.user] == el {
		delete(c.m, e.user)
	}
}

// Nodes lists the addresses an auth_query lookup tries, in order: the primary then the readable
// replicas, or the other way round when preferReplica (auth_query.node: replica).
func Nodes(snap *topology.Snapshot, preferReplica bool) []string {
	if snap == nil {
		return nil
	}
	var primary, replicas []string
	if p := snap.PrimaryNode(); p != nil {
		primary = append(primary, p.Address)
	}
	for _, i := range snap.Readable {
		replicas = append(replicas, snap.Nodes[i].Address)
	}
	if preferReplica {
		return append(replicas, primary...)
	}
	return append(primary, replicas...)
}

// FirstAnswer runs lookup on each address in turn until one answers (found or not) and returns
// that answer; when none does, every node's error.
func FirstAnswer[C any](addrs []string, lookup func(addr string) (C, bool, error)) (C, bool, error) {
	var errs []error
	for _, addr := range addrs {
		c, found, err := lookup(addr)
		if err == nil {
			return c, found, nil
		}
		errs = append(errs, err)
	}
	var zero C
	if len(errs) == 0 {
		return zero, false, errors.New("no node of the cluster is known to be up")
	}
	return zero, false, errors.Join(errs...)
}
