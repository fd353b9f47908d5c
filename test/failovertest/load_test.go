package failovertest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load runs writers that each insert an increasing sequence through baton and record which
// inserts were acknowledged, and when writes failed.
type load struct {
	mu       sync.Mutex
	acked    map[int][]int // writer → acknowledged sequence numbers
	errs     []loadErr
	lastOK   atomic.Int64 // unix nanos of when the newest acknowledged write was sent
	lastEnd  atomic.Int64 // ... and when it was acknowledged
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ackTimes []time.Time // when each write was acknowledged
}

func sortedTimes(ts []time.Time) []time.Time {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

type loadErr struct {
	at  time.Time
	err error
}

// write inserts (writer, seq); reconnect opens a new session (at the start, and after an
// error). The load bounds each call: writeTimeout, connectTimeout.
type writer interface {
	write(ctx context.Context, seq int) error
	reconnect(ctx context.Context) error
	close()
}

const (
	writeTimeout   = 20 * time.Second
	connectTimeout = 5 * time.Second
)

// withTimeout runs f with ctx bounded by d.
func withTimeout(ctx context.Context, d time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

// startLoad starts n writers made by mk, each connected first.
func startLoad(t *testing.T, n int, mk func(id int) writer) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{acked: map[int][]int{}, cancel: cancel}
	for id := range n {
		w := mk(id)
		if err := withTimeout(ctx, connectTimeout, w.reconnect); err != nil {
			t.Fatalf("writer %d: %v", id, err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer w.close()
			for seq := 1; ctx.Err() == nil; seq++ {
				sent := time.Now()
				err := withTimeout(ctx, writeTimeout, func(ctx context.Context) error { return w.write(ctx, seq) })
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, loadErr{time.Now(), err})
					l.mu.Unlock()
					// A failed session is replaced, as an application's pool would.
					for ctx.Err() == nil && withTimeout(ctx, connectTimeout, w.reconnect) != nil {
						select {
						case <-ctx.Done():
						case <-time.After(50 * time.Millisecond):
						}
					}
					continue
				}
				l.mu.Lock()
				l.acked[id] = append(l.acked[id], seq)
				l.ackTimes = append(l.ackTimes, time.Now())
				l.mu.Unlock()
				l.lastEnd.Store(time.Now().UnixNano())
				l.lastOK.Store(sent.UnixNano())
			}
		}()
	}
	return l
}

// stop ends the load and waits for the writers.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// ackedAfter waits until a write sent after t is acknowledged, and returns when it was
// acknowledged (bounded by d).
func (l *load) ackedAfter(tb testing.TB, t time.Time, d time.Duration) time.Time {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if sent := time.Unix(0, l.lastOK.Load()); sent.After(t) {
			return time.Unix(0, l.lastEnd.Load())
		}
		time.Sleep(5 * time.Millisecond) // polling the writers' progress
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tb.Fatalf("no write acknowledged within %v after %v; %d errors, last: %v", d, t.Format("15:04:05.000"), len(l.errs), lastErr(l.errs))
	return time.Time{}
}

// ackedCount is how many writes were acknowledged.
func (l *load) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.acked {
		n += len(s)
	}
	return n
}

// errorsSince returns the errors after t.
func (l *load) errorsSince(t time.Time) []loadErr {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loadErr
	for _, e := range l.errs {
		if !e.at.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

func lastErr(errs []loadErr) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[len(errs)-1].err
}

// snapshotAcked copies the acknowledged writes.
func (l *load) snapshotAcked() map[int][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int][]int{}
	for k, v := range l.acked {
		out[k] = append([]int(nil), v...)
	}
	return out
}
