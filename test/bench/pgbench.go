package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// workload is one pgbench invocation, minus connection and duration flags.
type workload struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
}

var workloads = []workload{
	{"select-only, simple protocol, 1 client", []string{"-S", "-M", "simple", "-c", "1", "-j", "1"}},
	{"select-only, extended protocol, 1 client", []string{"-S", "-M", "extended", "-c", "1", "-j", "1"}},
	{"select-only, simple protocol, 16 clients", []string{"-S", "-M", "simple", "-c", "16", "-j", "2"}},
	{"select-only, extended protocol, 16 clients", []string{"-S", "-M", "extended", "-c", "16", "-j", "2"}},
	{"TPC-B-like (default script), simple protocol, 16 clients", []string{"-M", "simple", "-c", "16", "-j", "2"}},
	{"select-only, simple protocol, 16 clients, a new connection per transaction (-C)", []string{"-S", "-M", "simple", "-c", "16", "-j", "2", "-C"}},
}

// pgbenchEnv is the environment of every pgbench run: the app user's
// password, and no TLS so that every target does the same work.
var pgbenchEnv = []string{"PGPASSWORD=app", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10"}

// initPgbench creates the pgbench tables on the primary as the app user.
func initPgbench(ctx context.Context, primaryPort, scale int) error {
	_, err := runTool(ctx, pgbenchEnv, "", "pgbench", "-i", "-s", strconv.Itoa(scale), "-q",
		"-h", "127.0.0.1", "-p", strconv.Itoa(primaryPort), "-U", "app", "app")
	return err
}

// waitReplay waits until every replica has replayed the primary's WAL as of
// now, so that reads routed to replicas see the pgbench tables.
func waitReplay(ctx context.Context, primaryURL string, replicaURLs []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pc, err := pgx.Connect(ctx, primaryURL)
	if err != nil {
		return fmt.Errorf("connect to primary: %w", err)
	}
	var lsn string
	err = pc.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	pc.Close(ctx)
	if err != nil {
		return fmt.Errorf("read primary WAL position: %w", err)
	}
	for _, u := range replicaURLs {
		rc, err := pgx.Connect(ctx, u)
		if err != nil {
			return fmt.Errorf("connect to replica: %w", err)
		}
		for {
			var done bool
			err = rc.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn).Scan(&done)
			if err != nil || done {
				break
			}
			select {
			case <-ctx.Done():
				err = fmt.Errorf("replica has not replayed %s after %v", lsn, timeout)
			case <-time.After(100 * time.Millisecond):
			}
			if err != nil {
				break
			}
		}
		rc.Close(context.Background())
		if err != nil {
			return err
		}
	}
	return nil
}

// runResult is one table row's measurement.
type runResult struct {
	TPS          float64 `json:"tps"`
	AvgMs        float64 `json:"avg_ms"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	Transactions int     `json:"transactions"`
	Failed       int     `json:"failed,omitempty"`
	Error        string  `json:"error,omitempty"`
}

// (With -C, pgbench reports the rate including the reconnections, which is what that row
// measures.)
var tpsLine = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)`)

// runPgbench runs one workload for d against a loopback port. Average and
// p99 latency come from pgbench's per-transaction log (-l), whose files are
// written under scratch and removed afterwards.
func runPgbench(ctx context.Context, w workload, port int, d time.Duration, scratch string) runResult {
	dir, err := os.MkdirTemp(scratch, "pgbench-")
	if err != nil {
		return runResult{Error: "error: " + err.Error()}
	}
	defer os.RemoveAll(dir)
	secs := max(1, int(math.Ceil(d.Seconds())))
	argv := []string{"pgbench", "-n", "-T", strconv.Itoa(secs), "-l", "--log-prefix", filepath.Join(dir, "tx"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "app"}
	argv = append(argv, w.Args...)
	argv = append(argv, "app")
	out, err := runTool(ctx, pgbenchEnv, dir, argv...)
	if err != nil {
		return runResult{Error: "error: " + firstLine(err.Error())}
	}
	m := tpsLine.FindStringSubmatch(out)
	if m == nil {
		return runResult{Error: "error: no tps line in pgbench output: " + firstLine(lastLine(out))}
	}
	r := runResult{}
	r.TPS, _ = strconv.ParseFloat(m[1], 64)
	lat, failed, err := readTxLogs(filepath.Join(dir, "tx"))
	if err != nil {
		return runResult{Error: "error: " + firstLine(err.Error())}
	}
	r.Transactions, r.Failed = len(lat), failed
	if len(lat) == 0 {
		r.Error = "error: no transaction completed"
		return r
	}
	var sum int64
	for _, v := range lat {
		sum += v
	}
	r.AvgMs = float64(sum) / float64(len(lat)) / 1000
	r.P50Ms = float64(percentile(lat, 0.50)) / 1000
	r.P99Ms = float64(percentile(lat, 0.99)) / 1000
	return r
}

// readTxLogs reads every per-transaction log file pgbench wrote for prefix
// (prefix.PID and prefix.PID.N, one per thread) and returns the latencies in
// microseconds and the number of failed transactions. A line is
// "client_id transaction_no time script_no time_epoch time_us [lag]"; time is
// the latency, or "failed"/"serialization"/"deadlock" for a failure.
func readTxLogs(prefix string) ([]int64, int, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil {
		return nil, 0, err
	}
	if len(files) == 0 {
		return nil, 0, fmt.Errorf("pgbench wrote no transaction log")
	}
	var lat []int64
	failed := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			v, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				failed++
				continue
			}
			lat = append(lat, v)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return lat, failed, nil
}

// percentile returns the nearest-rank q-quantile of vals, sorting vals.
func percentile(vals []int64, q float64) int64 {
	slices.Sort(vals)
	i := int(math.Ceil(q*float64(len(vals)))) - 1
	return vals[min(max(i, 0), len(vals)-1)]
}

// servedBy names the node that answers a read-only SELECT sent through a
// target, to show where each proxy routes reads.
func servedBy(ctx context.Context, port int, names map[int]string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(appConnString(port))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer conn.Close(context.Background())
	var p int
	if err := conn.QueryRow(ctx, "SELECT inet_server_port() FROM pgbench_branches LIMIT 1").Scan(&p); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if n, ok := names[p]; ok {
		return n
	}
	return fmt.Sprintf("port %d", p)
}
