package router

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestCacheHitEqualsMiss(t *testing.T) {
	cl := NewPGClassifier(testCatalog(), 10000)
	for _, c := range allCases() {
		miss := cl.Classify(c.sql)
		hit := cl.Classify(c.sql)
		if miss != hit {
			t.Errorf("%q: miss %s, hit %s", c.sql, fmtClass(miss), fmtClass(hit))
		}
	}
	st := cl.state.Load()
	if st.cache.len() == 0 {
		t.Fatal("nothing was cached")
	}
	// Only parser verdicts are cached; fast-path texts are never looked up.
	if _, ok := st.cache.get("SELECT 1"); ok {
		t.Error("fast-path text was cached")
	}
	if _, ok := st.cache.get("SELECT * FROM t FOR UPDATE"); !ok {
		t.Error("parser text was not cached")
	}
}

func TestCacheBounded(t *testing.T) {
	c := newClassCache(64)
	for i := 0; i < 10000; i++ {
		c.put(fmt.Sprintf("SELECT %d FOR UPDATE", i), Class{Reason: "x"})
		if i%7 == 0 {
			c.get("SELECT 0 FOR UPDATE") // keep one entry hot
		}
	}
	if n := c.len(); n > 64+cacheShards {
		t.Fatalf("cache holds %d entries, want about 64", n)
	}
	if _, ok := c.get("SELECT 9999 FOR UPDATE"); !ok {
		t.Error("latest entry evicted")
	}
	long := "SELECT 1 FOR UPDATE " + strings.Repeat(" ", maxCacheKey)
	c.put(long, Class{})
	if _, ok := c.get(long); ok {
		t.Error("text over maxCacheKey was cached")
	}
	var none *classCache
	none.put("x", Class{})
	if _, ok := none.get("x"); ok || none.len() != 0 || newClassCache(0) != nil {
		t.Error("disabled cache stores entries")
	}
}

// TestClassifyConcurrent hammers one classifier from many goroutines while the catalog is
// swapped; run with -race. Every answer must equal the single-threaded one.
func TestClassifyConcurrent(t *testing.T) {
	cases := allCases()
	want := make(map[string]Class, len(cases))
	ref := NewPGClassifier(testCatalog(), 0)
	for _, c := range cases {
		want[c.sql] = ref.Classify(c.sql)
	}
	cl := NewPGClassifier(testCatalog(), 50) // small: forces evictions
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // catalog refresher
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				cl.SetCatalog(testCatalog())
			}
		}
	}()
	var workers sync.WaitGroup
	for g := 0; g < 16; g++ {
		workers.Add(1)
		go func(g int) {
			defer workers.Done()
			for i := 0; i < 3*len(cases); i++ {
				c := cases[(i*7+g*13)%len(cases)]
				if got := cl.Classify(c.sql); got != want[c.sql] {
					t.Errorf("%q: got %s, want %s", c.sql, fmtClass(got), fmtClass(want[c.sql]))
					return
				}
			}
		}(g)
	}
	workers.Wait()
	close(stop)
	wg.Wait()
}
