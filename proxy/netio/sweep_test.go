package netio

import (
	"sync/atomic"
	"testing"
	"time"
)

// Sweep calls kick once per interval while enabled, never while not, and returns when stop closes.
func TestSweep(t *testing.T) {
	stop := make(chan struct{})
	var on atomic.Bool
	kicks := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		Sweep(stop, time.Millisecond, on.Load, func() int { kicks <- struct{}{}; return 0 })
		close(done)
	}()
	time.Sleep(20 * time.Millisecond) // (asserting that nothing happens while disabled)
	if len(kicks) != 0 {
		t.Fatalf("%d sweeps while disabled", len(kicks))
	}
	on.Store(true)
	for range 3 {
		select {
		case <-kicks:
		case <-time.After(5 * time.Second):
			t.Fatal("no sweep while enabled")
		}
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Sweep did not return after stop")
	}
}
