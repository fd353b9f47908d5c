package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// sysbenchWorkload is one sysbench OLTP script and its options, minus the
// connection, thread and duration flags.
type sysbenchWorkload struct {
	Name   string   `json:"name"`
	Script string   `json:"script"`
	Args   []string `json:"args"`
	// Note is printed in the table heading: how baton can route it.
	Note string `json:"note,omitempty"`
}

// sysbenchThreads is the client concurrency of every sysbench run.
const sysbenchThreads = 16

// sysbenchTables and sysbenchTableSize size the data set ("prepare").
const (
	sysbenchTables    = 4
	sysbenchTableSize = 10000
)

// sysbenchIgnoreErrors is --mysql-ignore-errors, sysbench's default made
// explicit: a deadlock (1213), a changed record (1020) or a lock wait
// timeout (1205) rolls the event back and retries it, counted in the
// table's errors; any other error ends the run with FATAL, shown in the
// table. "none" (no error ignored) does not work: oltp_read_write at 16
// threads on 4×10,000 rows deadlocks now and then even directly against
// the primary, which would blank whichever row hit it.
const sysbenchIgnoreErrors = "1213,1020,1205"

// sysbenchWorkloads run in this order, each against every target: the
// read-only ones first so that the writes of oltp_read_write come last.
//
// Every oltp_* script wraps each event in BEGIN … COMMIT unless
// --skip_trx=on. baton sends an explicit transaction to the primary, so
// oltp_read_only runs in autocommit mode to let its SELECTs go to the
// replicas; oltp_point_select never opens a transaction; oltp_read_write
// keeps its transactions (all to the primary).
var sysbenchWorkloads = []sysbenchWorkload{
	{Name: "oltp_point_select", Script: "oltp_point_select",
		Note: "autocommit point SELECTs: baton may read from the replicas"},
	{Name: "oltp_read_only --skip_trx=on", Script: "oltp_read_only", Args: []string{"--skip_trx=on"},
		Note: "autocommit (no BEGIN/COMMIT) so that baton may read from the replicas"},
	{Name: "oltp_read_write", Script: "oltp_read_write",
		Note: "BEGIN … COMMIT transactions: baton sends them to the primary"},
}

// sysbenchResult is one row of a sysbench table.
type sysbenchResult struct {
	QPS          float64 `json:"qps"`
	TPS          float64 `json:"tps"`
	P95Ms        float64 `json:"p95_ms"`
	Queries      int64   `json:"queries"`
	Transactions int64   `json:"transactions"`
	// IgnoredErrors and Reconnects are sysbench's counters of errors it
	// retried (see sysbenchIgnoreErrors) and of reconnections.
	IgnoredErrors int64  `json:"ignored_errors,omitempty"`
	Reconnects    int64  `json:"reconnects,omitempty"`
	Error         string `json:"error,omitempty"`
}

// sysbenchConn returns the connection flags for the app user on a
// loopback port.
func sysbenchConn(port int) []string {
	return []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=" + strconv.Itoa(port),
		"--mysql-user=app", "--mysql-password=app", "--mysql-db=app"}
}

// sysbenchData returns the data set flags, the same for prepare and run.
func sysbenchData() []string {
	return []string{"--tables=" + strconv.Itoa(sysbenchTables), "--table-size=" + strconv.Itoa(sysbenchTableSize)}
}

// prepareSysbench creates and fills the sbtest tables through port (the
// primary).
func prepareSysbench(ctx context.Context, port int) error {
	argv := append([]string{"sysbench", "oltp_read_write"}, sysbenchConn(port)...)
	argv = append(argv, sysbenchData()...)
	argv = append(argv, "prepare")
	out, err := runTool(ctx, nil, "", argv...)
	if err == nil {
		if f := fatalLine(out); f != "" {
			err = errors.New(f)
		}
	}
	return err
}

// sysbenchRunArgs is the full command line of one run.
func sysbenchRunArgs(w sysbenchWorkload, port int, d time.Duration) []string {
	secs := max(1, int(math.Ceil(d.Seconds())))
	argv := append([]string{"sysbench", w.Script}, sysbenchConn(port)...)
	argv = append(argv, sysbenchData()...)
	argv = append(argv, w.Args...)
	return append(argv,
		"--threads="+strconv.Itoa(sysbenchThreads), "--time="+strconv.Itoa(secs),
		"--report-interval=0", "--percentile=95", "--db-ps-mode=auto",
		"--mysql-ignore-errors="+sysbenchIgnoreErrors, "run")
}

// runSysbench runs one workload for d against a loopback port. A run that
// does not end within d plus a minute is killed (a hung query would keep
// sysbench waiting for its thread forever). logf receives sysbench's
// output when the run fails, so that the error can be read in full.
func runSysbench(ctx context.Context, w sysbenchWorkload, port int, d time.Duration, logf func(string, ...any)) sysbenchResult {
	limit := d + time.Minute
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, err := runTool(runCtx, nil, "", sysbenchRunArgs(w, port, d)...)
	r, perr := parseSysbench(out)
	fatal := fatalLine(out)
	switch {
	case ctx.Err() != nil:
		return sysbenchResult{Error: "error: interrupted"}
	case runCtx.Err() != nil:
		err = fmt.Errorf("sysbench did not finish within %v (killed)", limit)
	case fatal != "":
		err = errors.New(fatal)
	case err == nil && perr != nil:
		err = perr
	}
	if err != nil {
		logf("sysbench %s failed: %v; its output:\n%s", w.Name, err, indent(out))
		return sysbenchResult{Error: "error: " + firstLine(err.Error())}
	}
	return r
}

var (
	sbQueries      = regexp.MustCompile(`(?m)^\s*queries:\s+(\d+)\s+\(([0-9.]+) per sec\.\)`)
	sbTransactions = regexp.MustCompile(`(?m)^\s*transactions:\s+(\d+)\s+\(([0-9.]+) per sec\.\)`)
	sbIgnored      = regexp.MustCompile(`(?m)^\s*ignored errors:\s+(\d+)`)
	sbReconnects   = regexp.MustCompile(`(?m)^\s*reconnects:\s+(\d+)`)
	sbP95          = regexp.MustCompile(`(?m)^\s*95th percentile:\s+([0-9.]+)`)
)

// parseSysbench reads the "SQL statistics" and "Latency (ms)" sections of
// a run's output.
func parseSysbench(out string) (sysbenchResult, error) {
	var r sysbenchResult
	m := sbQueries.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no \"queries:\" line in sysbench output: %s", lastLine(out))
	}
	r.Queries, _ = strconv.ParseInt(m[1], 10, 64)
	r.QPS, _ = strconv.ParseFloat(m[2], 64)
	if m := sbTransactions.FindStringSubmatch(out); m != nil {
		r.Transactions, _ = strconv.ParseInt(m[1], 10, 64)
		r.TPS, _ = strconv.ParseFloat(m[2], 64)
	}
	m = sbP95.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no \"95th percentile:\" line in sysbench output: %s", lastLine(out))
	}
	r.P95Ms, _ = strconv.ParseFloat(m[1], 64)
	if m := sbIgnored.FindStringSubmatch(out); m != nil {
		r.IgnoredErrors, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := sbReconnects.FindStringSubmatch(out); m != nil {
		r.Reconnects, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if r.Queries == 0 {
		return r, fmt.Errorf("no query completed")
	}
	return r, nil
}

// fatalLine returns sysbench's first "FATAL:" line, "" when there is none.
// sysbench may print statistics after a thread failed, and may exit 0.
func fatalLine(out string) string {
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "FATAL:") {
			return l
		}
	}
	return ""
}

// indent prefixes every line of s for the log.
func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
