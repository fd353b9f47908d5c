package router

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// maxCacheKey: statement texts longer than this are not cached (they are rarely repeated and
// would pin large strings in memory).
const maxCacheKey = 8 << 10

// cacheShards: number of independently locked shards.
const cacheShards = 32

// classCache is a bounded map from statement text to Class, safe for concurrent use. Each shard
// evicts with the CLOCK algorithm (an approximation of LRU in which a hit only sets a flag, so
// lookups take a read lock).
type classCache struct {
	seed   maphash.Seed
	shards []cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	idx   map[string]int // key -> slot
	slots []cacheSlot
	hand  int
	limit int
}

type cacheSlot struct {
	key string
	val Class
	ref atomic.Bool // used since the hand last passed
}

// newClassCache returns a cache holding about size entries, or nil when size <= 0.
func newClassCache(size int) *classCache {
	if size <= 0 {
		return nil
	}
	n := min(cacheShards, size)
	c := &classCache{seed: maphash.MakeSeed(), shards: make([]cacheShard, n)}
	per := (size + n - 1) / n
	for i := range c.shards {
		c.shards[i] = cacheShard{idx: make(map[string]int, per), slots: make([]cacheSlot, 0, per), limit: per}
	}
	return c
}

func (c *classCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// get returns the cached Class for key.
func (c *classCache) get(key string) (Class, bool) {
	if c == nil || len(key) > maxCacheKey {
		return Class{}, false
	}
	s := c.shard(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.idx[key]
	if !ok {
		return Class{}, false
	}
	s.slots[i].ref.Store(true)
	return s.slots[i].val, true
}

// put stores val under a private copy of key, evicting an entry not used recently when the
// shard is full.
func (c *classCache) put(key string, val Class) {
	if c == nil || len(key) > maxCacheKey {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.idx[key]; ok {
		s.slots[i].val = val
		return
	}
	key = strings.Clone(key) // the caller's string may alias a reused buffer
	if len(s.slots) < s.limit {
		s.slots = append(s.slots, cacheSlot{key: key, val: val})
		s.idx[key] = len(s.slots) - 1
		return
	}
	for {
		sl := &s.slots[s.hand]
		i := s.hand
		s.hand = (s.hand + 1) % len(s.slots)
		if sl.ref.Swap(false) {
			continue // second chance; terminates: every pass clears the flags it sees
		}
		delete(s.idx, sl.key)
		sl.key, sl.val = key, val
		s.idx[key] = i
		return
	}
}

// len is the number of cached entries.
func (c *classCache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.idx)
		s.mu.RUnlock()
	}
	return n
}
