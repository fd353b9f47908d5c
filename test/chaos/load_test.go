package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// client is one application session through baton.
type client interface {
	// insert writes (w, seq) in autocommit mode; txInsert writes it in an explicit transaction
	// that also reads.
	insert(ctx context.Context, w, seq int) error
	txInsert(ctx context.Context, w, seq int) error
	// read runs a query baton sends to a replica.
	read(ctx context.Context, w int) error
	close()
}

// dialer opens a session through the baton listening on addr.
type dialer func(ctx context.Context, addr string) (client, error)

// op is one failed operation of the load.
type op struct {
	read       bool
	inst       int // index of the baton instance
	start, end time.Time
	err        error
}

func (o op) String() string {
	kind := "write"
	if o.read {
		kind = "read"
	}
	return fmt.Sprintf("%s via baton %d at %s (%v): %v", kind, o.inst, o.start.Format("15:04:05.000"), o.end.Sub(o.start).Round(time.Millisecond), o.err)
}

// okWrite is one acknowledged write.
type okWrite struct {
	inst       int
	w, seq     int
	start, end time.Time
}

// load runs writers and readers through the baton instances (worker i uses instance i mod n).
// Every acknowledged write is recorded with when it was sent and acknowledged; so is every
// failure. A session that fails is replaced, as an application's pool would.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	acked   map[int][]int // writer → acknowledged sequence numbers
	writes  []okWrite     // in acknowledgement order
	lastRd  []time.Time   // per instance: start of the newest successful read
	reads   int
	errs    []op
	stopped bool
}

const opTimeout = 20 * time.Second

// startLoad starts writers and readers over the instance addresses addrs.
func startLoad(t *testing.T, dial dialer, addrs []string, writers, readers int) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, acked: map[int][]int{}, lastRd: make([]time.Time, len(addrs))}
	t.Cleanup(l.stop)
	for i := range writers + readers {
		inst := i % len(addrs)
		isReader := i >= writers
		c, err := dial(ctx, addrs[inst])
		if err != nil {
			cancel()
			t.Fatalf("worker %d: connect through baton %d: %v", i, inst, err)
		}
		l.wg.Add(1)
		go l.work(ctx, dial, addrs[inst], inst, i, isReader, c)
	}
	return l
}

func (l *load) work(ctx context.Context, dial dialer, addr string, inst, id int, isReader bool, c client) {
	defer l.wg.Done()
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	for seq := 1; ctx.Err() == nil; seq++ {
		start := time.Now()
		var err error
		if c == nil {
			c, err = dial(ctx, addr)
		}
		if err == nil {
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			switch {
			case isReader:
				err = c.read(octx, id)
			case seq%2 == 0:
				err = c.txInsert(octx, id, seq)
			default:
				err = c.insert(octx, id, seq)
			}
			cancel()
		}
		end := time.Now()
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		switch {
		case err != nil:
			l.errs = append(l.errs, op{read: isReader, inst: inst, start: start, end: end, err: err})
		case isReader:
			l.reads++
			l.lastRd[inst] = start
		default:
			l.acked[id] = append(l.acked[id], seq)
			l.writes = append(l.writes, okWrite{inst: inst, w: id, seq: seq, start: start, end: end})
		}
		l.mu.Unlock()
		if err != nil {
			if c != nil {
				c.close()
				c = nil
			}
			pause(ctx, 50*time.Millisecond)
			continue
		}
		pause(ctx, 2*time.Millisecond) // leave the CPU to the servers on small machines
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// stop ends the load and waits for every worker. Idempotent.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// anyInst matches every instance in the helpers below.
const anyInst = -1

// ackedAfter waits up to d until a write sent after since through instance inst (or any) is
// acknowledged, and returns when it was acknowledged.
func (l *load) ackedAfter(t *testing.T, since time.Time, inst int, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if at, ok := l.firstAckedAfter(since, inst); ok {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write sent after %s through baton %d acknowledged within %v; last errors: %v",
				since.Format("15:04:05.000"), inst, d, l.lastErrors(3))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstAckedAfter returns the acknowledgement time of the first acknowledged write sent after
// since (in acknowledgement order).
func (l *load) firstAckedAfter(since time.Time, inst int) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.writes {
		if w.start.After(since) && (inst == anyInst || w.inst == inst) {
			return w.end, true
		}
	}
	return time.Time{}, false
}

// readAfter waits up to d until a read sent after since through instance inst succeeds.
func (l *load) readAfter(t *testing.T, since time.Time, inst int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		ok := l.lastRd[inst].After(since)
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read sent after %s through baton %d succeeded within %v; last errors: %v",
				since.Format("15:04:05.000"), inst, d, l.lastErrors(3))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failures returns the failed operations that keep(op) selects.
func (l *load) failures(keep func(op) bool) []op {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []op
	for _, o := range l.errs {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

// startedAfter selects operations sent after t.
func startedAfter(t time.Time) func(op) bool {
	return func(o op) bool { return !o.start.Before(t) }
}

// endedAfter selects operations that ended after t (they may have been in flight at t).
func endedAfter(t time.Time) func(op) bool {
	return func(o op) bool { return o.end.After(t) }
}

func (l *load) lastErrors(n int) []op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs[max(0, len(l.errs)-n):])
}

// counts returns how many writes were acknowledged and reads succeeded.
func (l *load) counts() (writes, reads int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.writes), l.reads
}

// snapshotAcked copies the acknowledged (writer, seq) pairs.
func (l *load) snapshotAcked() map[int][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int][]int, len(l.acked))
	for k, v := range l.acked {
		out[k] = slices.Clone(v)
	}
	return out
}

// ackedSentIn returns the acknowledged writes sent in [from, to).
func (l *load) ackedSentIn(from, to time.Time) []okWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []okWrite
	for _, w := range l.writes {
		if !w.start.Before(from) && w.start.Before(to) {
			out = append(out, w)
		}
	}
	return out
}

// maxGap is the longest time without an acknowledgement in [from, to]: the write pause.
func (l *load) maxGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	ends := make([]time.Time, 0, len(l.writes))
	for _, w := range l.writes {
		ends = append(ends, w.end)
	}
	l.mu.Unlock()
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	prev, gap := from, time.Duration(0)
	for _, e := range ends {
		if e.Before(from) {
			continue
		}
		if e.After(to) {
			e = to
		}
		gap = max(gap, e.Sub(prev))
		prev = e
		if e.Equal(to) {
			break
		}
	}
	return max(gap, to.Sub(prev))
}

// errNotConnected is returned by a client whose session is gone.
var errNotConnected = errors.New("not connected")
