package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// rssResult is the memory of one proxy holding idle client connections.
type rssResult struct {
	Target       string  `json:"target"`
	Clients      int     `json:"clients"`
	BeforeKiB    int64   `json:"before_kib"`
	AfterKiB     int64   `json:"after_kib"`
	PerConnBytes float64 `json:"per_conn_bytes"`
	Error        string  `json:"error,omitempty"`
}

// raiseNoFile lifts this process's open-file limit (soft and, as root, hard)
// to at least n. Children started afterwards, baton and PgBouncer included,
// inherit it; the benchmark itself holds one descriptor per idle client.
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		// Set it anyway: the Go runtime restores the limit it found at startup in the
		// children it starts unless the program itself has called Setrlimit.
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	want := lim
	want.Cur = n
	if want.Max < n {
		want.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not root: take what the hard limit allows.
		lim.Cur = lim.Max
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err2 != nil {
			return err2
		}
		return fmt.Errorf("open-file limit is %d, wanted %d: %w", lim.Max, n, err)
	}
	return nil
}

// procStatusKiB reads a "Key:   N kB" field of /proc/PID/status.
func procStatusKiB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// measureIdleRSS opens n client connections through the target (startup and
// authentication complete, then idle) with at most `parallel` logins in
// flight, and reads the target's VmRSS before and after. It gives up after
// 50 failed logins and reports on the connections it got. All connections
// are closed before it returns.
func measureIdleRSS(ctx context.Context, t *target, n, parallel int) rssResult {
	r := rssResult{Target: t.name}
	if t.child == nil {
		r.Error = t.unavailable
		return r
	}
	pid := t.child.pid()
	before, err := procStatusKiB(pid, "VmRSS")
	if err != nil {
		r.Error = "error: " + err.Error()
		return r
	}
	r.BeforeKiB = before
	cfg, err := pgconn.ParseConfig(appConnString(t.port))
	if err != nil {
		r.Error = "error: " + err.Error()
		return r
	}

	conns := make([]*pgconn.PgConn, n)
	var next, failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failures.Load() >= 50 || ctx.Err() != nil {
					return
				}
				attempt, cancel := context.WithTimeout(ctx, 30*time.Second)
				c, err := pgconn.ConnectConfig(attempt, cfg)
				cancel()
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()

	after, rssErr := settledRSS(ctx, pid)
	closeAll(conns, parallel)
	if ctx.Err() != nil {
		r.Error = "error: interrupted"
		return r
	}
	for _, c := range conns {
		if c != nil {
			r.Clients++
		}
	}
	switch {
	case rssErr != nil:
		r.Error = "error: " + rssErr.Error()
	case failures.Load() > 0:
		r.Error = fmt.Sprintf("error: %d logins failed, first: %s", failures.Load(), firstLine(firstErr.Load().(string)))
	}
	r.AfterKiB = after
	if r.Clients > 0 {
		r.PerConnBytes = float64(after-before) * 1024 / float64(r.Clients)
	}
	return r
}

// closeAll sends Terminate on every open connection, `parallel` at a time.
func closeAll(conns []*pgconn.PgConn, parallel int) {
	work := make(chan *pgconn.PgConn)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for c := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = c.Close(ctx)
				cancel()
			}
		})
	}
	for _, c := range conns {
		if c != nil {
			work <- c
		}
	}
	close(work)
	wg.Wait()
}

// fitNoFile caps a client count to what this process's open-file limit can hold (one
// descriptor per client and some to spare), saying so in a clear line.
func fitNoFile(clients int, logf func(string, ...any)) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return clients
	}
	room := int(lim.Cur) - 1024
	if clients <= room {
		return clients
	}
	logf("the open-file limit is %d and cannot be raised (run as root, or raise the hard limit: ulimit -Hn); "+
		"the many-clients table runs %d clients instead of %d", lim.Cur, max(room, 1), clients)
	return max(room, 1)
}

// logNoFile says what open-file limit a proxy runs with, and warns when it cannot hold the
// clients (it inherited this program's raised limit; PgBouncer keeps it across its -u switch).
func logNoFile(t *target, clients int, logf func(string, ...any)) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", t.child.pid()))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return
			}
			soft, err := strconv.Atoi(f[0])
			if err != nil {
				return
			}
			if soft < clients+256 {
				logf("warning: %s runs with an open-file limit of %d, too few for %d clients (ulimit -n)", t.name, soft, clients)
			} else {
				logf("%s: open-file limit %d", t.name, soft)
			}
			return
		}
	}
}

// settledRSS reads pid's VmRSS once it has stopped falling: a proxy may give memory back a little
// after its clients went idle (baton parks idle sessions after limits.park_idle_after and then
// returns their stacks to the operating system). It waits until the figure has not fallen for
// 5 s, at most 30 s, the same for every proxy.
func settledRSS(ctx context.Context, pid int) (int64, error) {
	low, err := procStatusKiB(pid, "VmRSS")
	if err != nil {
		return 0, err
	}
	since := time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && time.Since(since) < 5*time.Second; {
		select {
		case <-ctx.Done():
			return low, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		v, err := procStatusKiB(pid, "VmRSS")
		if err != nil {
			return 0, err
		}
		if v < low-64 { // (ignore page-level jitter)
			low, since = v, time.Now()
		}
	}
	return low, nil
}
