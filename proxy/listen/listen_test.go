package listen

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoopBoundsClientsAndDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sessions, accepted, rejected atomic.Int64
	var draining atomic.Bool
	var wg sync.WaitGroup
	release := make(chan struct{})
	rejectedConn := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- Loop(ln, draining.Load, func() int { return 1 }, Counters{&sessions, &accepted, &rejected}, &wg,
			func(c net.Conn) { <-release; c.Close() },
			func(c net.Conn) { c.Close(); rejectedConn <- struct{}{} })
	}()
	c1, _ := net.Dial("tcp", ln.Addr().String())
	defer c1.Close()
	for sessions.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	c2, _ := net.Dial("tcp", ln.Addr().String())
	defer c2.Close()
	select {
	case <-rejectedConn:
	case <-time.After(5 * time.Second):
		t.Fatal("the client over the bound was not rejected")
	}
	if accepted.Load() != 2 || rejected.Load() != 1 || sessions.Load() != 1 {
		t.Fatalf("accepted %d rejected %d sessions %d", accepted.Load(), rejected.Load(), sessions.Load())
	}
	draining.Store(true)
	ln.Close()
	if err := <-done; err != nil {
		t.Fatalf("a draining close returned %v", err)
	}
	close(release)
	wg.Wait()
	if sessions.Load() != 0 {
		t.Fatalf("sessions %d after the last one ended", sessions.Load())
	}
}

func TestDrainForcesAfterDeadline(t *testing.T) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { defer wg.Done(); <-stop }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	forced := false
	Drain(ctx, &wg, func() { forced = true; close(stop) })
	if !forced {
		t.Fatal("Drain returned without forcing a session that would not end")
	}
	// Nothing left: no force.
	Drain(context.Background(), &wg, func() { t.Fatal("forced with nothing running") })
}

func TestEveryStops(t *testing.T) {
	stop := make(chan struct{})
	ticks := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() { Every(stop, time.Millisecond, func(time.Time) { ticks <- struct{}{} }); close(done) }()
	<-ticks
	close(stop)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not stop")
	}
}
