package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// manyOptions sizes the many-clients table.
type manyOptions struct {
	clients  int           // client connections opened and kept
	active   int           // of them, how many run statements at once
	duration time.Duration // how long the active ones run
	rate     int           // new connections per second at most
	parallel int           // logins in flight at most
	rwShare  int           // percent of the active clients' operations that are read-write transactions
}

// manyResult is one target's row of the many-clients table.
type manyResult struct {
	Target      string         `json:"target"`
	Skipped     string         `json:"skipped,omitempty"`
	Connected   int            `json:"clients_connected"`
	ConnectSecs float64        `json:"connect_seconds"`
	Errors      map[string]int `json:"errors,omitempty"` // distinct error text → count
	TPS         float64        `json:"tps"`
	Reads       int            `json:"reads"`
	Txs         int            `json:"rw_transactions"`
	ReadP50Ms   float64        `json:"read_p50_ms"`
	ReadP99Ms   float64        `json:"read_p99_ms"`
	TxP50Ms     float64        `json:"tx_p50_ms"`
	TxP99Ms     float64        `json:"tx_p99_ms"`
	QueueWait   string         `json:"queue_wait"` // what the proxy reports, labelled with its source
	QueueDetail string         `json:"queue_wait_detail,omitempty"`
	RSSKiB      int64          `json:"rss_kib,omitempty"` // the proxy's VmRSS with every client connected
	RSSBefore   int64          `json:"rss_before_kib,omitempty"`
	RSSAfter    int64          `json:"rss_after_run_kib,omitempty"` // after the active phase
}

func (r *manyResult) errorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// errCounter counts errors by their text.
type errCounter struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errCounter) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[firstLine(err.Error())]++
}

func (e *errCounter) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// queueProbe reads a proxy's view of the time clients waited for a server connection: start is
// called before the active phase, stop after it, and returns the cell text and a detail line.
type queueProbe interface {
	start(ctx context.Context) error
	stop(ctx context.Context) (cell, detail string, err error)
}

// runMany opens o.clients connections through port at a bounded rate, then lets o.active of
// them run short reads (SELECT by primary key on pgbench_accounts) and read-write transactions
// (BEGIN; UPDATE; SELECT; COMMIT) for o.duration while the others stay idle, and closes them all.
// rssPID, when not 0, is the proxy whose VmRSS is read with every client connected.
func runMany(ctx context.Context, name string, port int, o manyOptions, accounts int, rssPID int, probe queueProbe, logf func(string, ...any)) manyResult {
	r := manyResult{Target: name}
	cfg, err := pgconn.ParseConfig(appConnString(port))
	if err != nil {
		r.Skipped = "error: " + err.Error()
		return r
	}
	var errs errCounter
	if rssPID != 0 {
		r.RSSBefore, _ = procStatusKiB(rssPID, "VmRSS")
	}
	conns := make([]*pgconn.PgConn, o.clients)
	defer closeAll(conns, 64)

	// Connect: o.parallel logins in flight, at most o.rate a second.
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(max(1, o.rate)))
	defer tick.Stop()
	work := make(chan int)
	var wg sync.WaitGroup
	for range o.parallel {
		wg.Go(func() {
			for i := range work {
				c, err := connectRetry(ctx, cfg)
				if err != nil {
					errs.add(fmt.Errorf("connect: %w", err))
					continue
				}
				conns[i] = c
			}
		})
	}
	lastLog := time.Now()
	for i := 0; i < o.clients && ctx.Err() == nil; i++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		work <- i
		if time.Since(lastLog) > 10*time.Second {
			logf("%s: %d of %d clients connecting or connected", name, i, o.clients)
			lastLog = time.Now()
		}
	}
	close(work)
	wg.Wait()
	r.ConnectSecs = time.Since(start).Seconds()
	for _, c := range conns {
		if c != nil {
			r.Connected++
		}
	}
	logf("%s: %d clients connected in %.1f s", name, r.Connected, r.ConnectSecs)
	if rssPID != 0 {
		r.RSSKiB, _ = procStatusKiB(rssPID, "VmRSS")
	}
	if ctx.Err() != nil {
		r.Errors = errs.snapshot()
		return r
	}

	// The active ones: spread over the connected set, every (clients/active)-th.
	var active []int
	if o.active > 0 {
		step := max(1, o.clients/o.active)
		for i := 0; i < o.clients && len(active) < o.active; i += step {
			active = append(active, i)
		}
	}
	if probe != nil {
		if err := probe.start(ctx); err != nil {
			r.QueueWait = "error: " + firstLine(err.Error())
			probe = nil
		}
	}
	logf("%s: %d clients active for %v, the other %d idle", name, len(active), o.duration, o.clients-len(active))
	var reads, txs [][]int64
	reads = make([][]int64, len(active))
	txs = make([][]int64, len(active))
	deadline := time.Now().Add(o.duration)
	runStart := time.Now()
	for w, i := range active {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if conns[i] == nil || conns[i].IsClosed() {
					c, err := connectRetry(ctx, cfg)
					if err != nil {
						errs.add(fmt.Errorf("reconnect: %w", err))
						time.Sleep(100 * time.Millisecond)
						continue
					}
					conns[i] = c
				}
				c := conns[i]
				aid := []byte(strconv.Itoa(1 + rng.IntN(accounts)))
				t0 := time.Now()
				if rng.IntN(100) < o.rwShare {
					if err := rwTx(ctx, c, aid, rng.IntN(10000)-5000); err != nil {
						errs.add(err)
						continue
					}
					txs[w] = append(txs[w], time.Since(t0).Microseconds())
				} else {
					if err := pointRead(ctx, c, aid); err != nil {
						errs.add(err)
						continue
					}
					reads[w] = append(reads[w], time.Since(t0).Microseconds())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(runStart)
	if rssPID != 0 {
		r.RSSAfter, _ = procStatusKiB(rssPID, "VmRSS")
	}
	if probe != nil {
		cell, detail, err := probe.stop(ctx)
		if err != nil {
			cell = "error: " + firstLine(err.Error())
		}
		r.QueueWait, r.QueueDetail = cell, detail
	}
	all := func(per [][]int64) []int64 {
		var out []int64
		for _, l := range per {
			out = append(out, l...)
		}
		return out
	}
	rl, tl := all(reads), all(txs)
	r.Reads, r.Txs = len(rl), len(tl)
	r.TPS = float64(len(rl)+len(tl)) / elapsed.Seconds()
	if len(rl) > 0 {
		r.ReadP50Ms = float64(percentile(rl, 0.50)) / 1000
		r.ReadP99Ms = float64(percentile(rl, 0.99)) / 1000
	}
	if len(tl) > 0 {
		r.TxP50Ms = float64(percentile(tl, 0.50)) / 1000
		r.TxP99Ms = float64(percentile(tl, 0.99)) / 1000
	}
	r.Errors = errs.snapshot()
	return r
}

// connectRetry logs in once, with a generous timeout: a login queued behind thousands of
// others is slow, not failed.
func connectRetry(ctx context.Context, cfg *pgconn.Config) (*pgconn.PgConn, error) {
	attempt, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return pgconn.ConnectConfig(attempt, cfg)
}

// opTimeout bounds one statement: far above any queue wait a working proxy should show.
const opTimeout = 60 * time.Second

// pointRead runs the select-only script's statement with the extended protocol (an unnamed
// statement, as most drivers send it).
func pointRead(ctx context.Context, c *pgconn.PgConn, aid []byte) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	res := c.ExecParams(ctx, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", [][]byte{aid}, nil, nil, nil).Read()
	if res.Err != nil {
		return res.Err
	}
	if len(res.Rows) != 1 {
		return fmt.Errorf("read of aid %s returned %d rows", aid, len(res.Rows))
	}
	return nil
}

// rwTx runs BEGIN; UPDATE; SELECT; COMMIT, each its own round trip. After an error it rolls
// back (a broken connection is replaced by the caller).
func rwTx(ctx context.Context, c *pgconn.PgConn, aid []byte, delta int) (err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	defer func() {
		if err != nil && !c.IsClosed() {
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = c.Exec(rctx, "ROLLBACK").ReadAll()
			rcancel()
		}
	}()
	if _, err := c.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		return err
	}
	tag, err := c.ExecParams(ctx, "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
		[][]byte{[]byte(strconv.Itoa(delta)), aid}, nil, nil, nil).Close()
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update of aid %s touched %d rows", aid, tag.RowsAffected())
	}
	res := c.ExecParams(ctx, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", [][]byte{aid}, nil, nil, nil).Read()
	if res.Err != nil {
		return res.Err
	}
	if _, err := c.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		return err
	}
	return nil
}

// directMaxConnections reads the primary's max_connections.
func directMaxConnections(ctx context.Context, port int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, appConnString(port))
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	res, err := c.Exec(ctx, "SHOW max_connections").ReadAll()
	if err != nil {
		return 0, err
	}
	if len(res) != 1 || len(res[0].Rows) != 1 {
		return 0, errors.New("SHOW max_connections: no row")
	}
	return strconv.Atoi(string(res[0].Rows[0][0]))
}

// sortedErrors lists error texts, most frequent first.
func sortedErrors(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// atomicMax keeps the largest value stored.
type atomicMax struct{ v atomic.Int64 }

func (m *atomicMax) store(x int64) {
	for {
		old := m.v.Load()
		if x <= old || m.v.CompareAndSwap(old, x) {
			return
		}
	}
}
