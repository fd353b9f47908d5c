package buffer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

func hasPrimary(s *topology.Snapshot) bool { return s != nil && s.PrimaryNode() != nil }

func snap(primary bool) *topology.Snapshot {
	s := &topology.Snapshot{Primary: -1, Nodes: []topology.NodeState{{Name: "a", Up: true}}}
	if primary {
		s.Primary = 0
	}
	return s
}

func newBuf(live *topology.Live, cfg topology.Buffer) *Buffer {
	return New(live, func() topology.Buffer { return cfg })
}

func TestReleasedWhenPrimaryAppears(t *testing.T) {
	live := &topology.Live{}
	live.Store(snap(false))
	b := newBuf(live, topology.Buffer{Window: topology.Duration(5 * time.Second), MaxRequests: 10, MaxDuration: topology.Duration(time.Minute)})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := b.Wait(context.Background(), hasPrimary)
			if err == nil && !hasPrimary(s) {
				err = errors.New("released without a primary")
			}
			errs <- err
		}()
	}
	for b.Held() < 3 {
		time.Sleep(time.Millisecond) // until the three statements are held
	}
	live.Store(snap(false)) // a new snapshot without a primary releases nothing
	live.Store(snap(true))
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if b.Buffered.Load() != 3 || b.Released.Load() != 3 || b.Held() != 0 {
		t.Fatalf("buffered %d released %d held %d", b.Buffered.Load(), b.Released.Load(), b.Held())
	}
}

func TestUsableAtOnceIsNotBuffered(t *testing.T) {
	live := &topology.Live{}
	live.Store(snap(true))
	b := newBuf(live, topology.Buffer{Window: topology.Duration(time.Second), MaxRequests: 1, MaxDuration: topology.Duration(time.Second)})
	if _, err := b.Wait(context.Background(), hasPrimary); err != nil || b.Buffered.Load() != 0 {
		t.Fatalf("err %v buffered %d", err, b.Buffered.Load())
	}
}

func TestWindowAndFull(t *testing.T) {
	live := &topology.Live{}
	live.Store(snap(false))
	b := newBuf(live, topology.Buffer{Window: topology.Duration(50 * time.Millisecond), MaxRequests: 1, MaxDuration: topology.Duration(time.Minute)})
	done := make(chan error)
	go func() {
		_, err := b.Wait(context.Background(), hasPrimary)
		done <- err
	}()
	for b.Held() < 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := b.Wait(context.Background(), hasPrimary); !errors.Is(err, ErrFull) {
		t.Fatalf("second statement: %v, want ErrFull", err)
	}
	if err := <-done; !errors.Is(err, ErrWindow) {
		t.Fatalf("first statement: %v, want ErrWindow", err)
	}
	if b.Failed.Load() != 2 {
		t.Fatalf("failed %d, want 2", b.Failed.Load())
	}
}

func TestMaxDurationAndSeen(t *testing.T) {
	live := &topology.Live{}
	live.Store(snap(false))
	b := newBuf(live, topology.Buffer{Window: topology.Duration(time.Minute), MaxRequests: 10, MaxDuration: topology.Duration(30 * time.Millisecond)})
	start := time.Now()
	if _, err := b.Wait(context.Background(), hasPrimary); !errors.Is(err, ErrTooLong) {
		t.Fatalf("got %v, want ErrTooLong", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("max_duration 30ms took %v", d)
	}
	// While the outage lasts, further statements fail at once.
	if _, err := b.Wait(context.Background(), hasPrimary); !errors.Is(err, ErrTooLong) {
		t.Fatalf("got %v, want ErrTooLong at once", err)
	}
	// A primary seen ends the outage: the next one is held again (and released).
	b.Seen()
	go func() {
		for b.Held() < 1 {
			time.Sleep(time.Millisecond)
		}
		live.Store(snap(true))
	}()
	if _, err := b.Wait(context.Background(), hasPrimary); err != nil {
		t.Fatalf("after Seen: %v", err)
	}
}

func TestCloseAndContext(t *testing.T) {
	live := &topology.Live{}
	live.Store(snap(false))
	b := newBuf(live, topology.Buffer{Window: topology.Duration(time.Minute), MaxRequests: 10, MaxDuration: topology.Duration(time.Minute)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Wait(ctx, hasPrimary); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	b.Close()
	if _, err := b.Wait(context.Background(), hasPrimary); !errors.Is(err, ErrShutdown) {
		t.Fatalf("got %v, want ErrShutdown", err)
	}
}

// A network failure is a NodeDown (the statement may wait); anything else stays as it is.
func TestNetDown(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	var nd *NodeDown
	if err := NetDown(fmt.Errorf("acquire: %w", refused)); !errors.As(err, &nd) || !Holdable(err) {
		t.Errorf("NetDown(refused) = %v, want a holdable NodeDown", err)
	}
	auth := errors.New("password authentication failed")
	if err := NetDown(auth); err != auth {
		t.Errorf("NetDown(auth failure) = %v, want it unchanged", err)
	}
}
