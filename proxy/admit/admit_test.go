package admit

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCounts(t *testing.T) {
	var c Counts
	r1, ok1 := c.Acquire("app", 2)
	r2, ok2 := c.Acquire("app", 2)
	_, ok3 := c.Acquire("app", 2)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire: %v %v %v; want the third refused", ok1, ok2, ok3)
	}
	if _, ok := c.Acquire("other", 2); !ok {
		t.Fatal("another name is limited by app's count")
	}
	r1()
	r1() // idempotent
	if c.Count("app") != 1 {
		t.Fatalf("count %d after one release (twice)", c.Count("app"))
	}
	if _, ok := c.Acquire("app", 2); !ok {
		t.Fatal("refused after a release")
	}
	r2()
	for range 100 {
		if _, ok := c.Acquire("nolimit", 0); !ok {
			t.Fatal("max 0 limited")
		}
	}
}

func TestCountsConcurrent(t *testing.T) {
	var c Counts
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak, cur := 0, 0
	for range 50 {
		wg.Go(func() {
			for range 100 {
				r, ok := c.Acquire("u", 5)
				if !ok {
					continue
				}
				mu.Lock()
				cur++
				peak = max(peak, cur)
				mu.Unlock()
				mu.Lock()
				cur--
				mu.Unlock()
				r()
			}
		})
	}
	wg.Wait()
	if peak > 5 || c.Count("u") != 0 {
		t.Fatalf("peak %d (limit 5), %d left counted", peak, c.Count("u"))
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBackoff(t *testing.T) {
	clk := &clock{t: time.Unix(1e6, 0)}
	b := NewBackoff(2*time.Second, clk.now)
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 4000}
	other := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 4001} // same host, new port
	for i := range DefaultFree {
		if d := b.Delay(a); d != 0 {
			t.Fatalf("delay %v after %d failures", d, i)
		}
		b.Failed(a)
	}
	want := []time.Duration{0, DefaultFirst, 2 * DefaultFirst, 4 * DefaultFirst}
	for i, w := range want {
		if d := b.Delay(other); d != w {
			t.Fatalf("after %d failures: delay %v, want %v", DefaultFree+i, d, w)
		}
		b.Failed(a)
	}
	for range 50 {
		b.Failed(a)
	}
	if d := b.Delay(a); d != 2*time.Second {
		t.Fatalf("delay %v; want the cap 2s", d)
	}
	clk.t = clk.t.Add(DefaultWindow + time.Second)
	if d := b.Delay(a); d != 0 {
		t.Fatalf("delay %v after the window", d)
	}
	if NewBackoff(0, nil).Delay(a) != 0 {
		t.Fatal("max 0 must turn the backoff off")
	}
}

// FailureWriter counts the failure before the error's bytes go out, once, and not after Stop.
func TestFailureWriter(t *testing.T) {
	var out []string
	w := writerFunc(func(p []byte) (int, error) { out = append(out, "write "+string(p)); return len(p), nil })
	fw := &FailureWriter{W: w, IsErr: func(p []byte) bool { return p[0] == 'E' }, Failed: func() { out = append(out, "failed") }}
	fw.Write([]byte("R1"))
	fw.Write([]byte("E1"))
	fw.Write([]byte("E2"))
	if got := strings.Join(out, ","); got != "write R1,failed,write E1,write E2" || !fw.Counted() {
		t.Fatalf("got %q (counted %v)", got, fw.Counted())
	}
	out = nil
	fw = &FailureWriter{W: w, IsErr: func(p []byte) bool { return p[0] == 'E' }, Failed: func() { out = append(out, "failed") }}
	fw.Stop()
	fw.Write([]byte("E1"))
	if got := strings.Join(out, ","); got != "write E1" {
		t.Fatalf("after Stop: got %q", got)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
