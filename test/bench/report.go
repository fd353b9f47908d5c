package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// row is one target's line in a workload's table.
type row struct {
	Target string `json:"target"`
	runResult
	// Ratio is tps divided by the direct connection's tps; 0 when either is
	// missing.
	Ratio float64 `json:"ratio_to_direct,omitempty"`
}

// workloadReport is one table.
type workloadReport struct {
	workload
	Rows []row `json:"rows"`
}

// report is everything one run measured; -json writes it as is.
type report struct {
	Started   time.Time        `json:"started"`
	Duration  string           `json:"duration_per_run"`
	Scale     int              `json:"scale"`
	Workloads []workloadReport `json:"workloads"`
	IdleRSS   []rssResult      `json:"idle_rss,omitempty"`
	Many      *manyReport      `json:"many_clients,omitempty"`
	MySQL     []sysbenchReport `json:"mysql,omitempty"`
}

// sysbenchRow is one target's line in a sysbench table.
type sysbenchRow struct {
	Target string `json:"target"`
	sysbenchResult
	// Ratio is qps divided by the direct connection's qps; 0 when either
	// is missing.
	Ratio float64 `json:"ratio_to_direct,omitempty"`
	// NodeShare is how the run's statements spread over the MariaDB nodes.
	NodeShare string `json:"statements_per_node,omitempty"`
}

// sysbenchReport is one MySQL table.
type sysbenchReport struct {
	Workload sysbenchWorkload `json:"workload"`
	Threads  int              `json:"threads"`
	Rows     []sysbenchRow    `json:"rows"`
}

// fillRatios sets each row's ratio to the direct row's qps.
func (w *sysbenchReport) fillRatios() {
	var direct float64
	for _, r := range w.Rows {
		if r.Target == targetDirect && r.Error == "" {
			direct = r.QPS
		}
	}
	for i := range w.Rows {
		if direct > 0 && w.Rows[i].Error == "" {
			w.Rows[i].Ratio = w.Rows[i].QPS / direct
		}
	}
}

// fillRatios sets each row's ratio to the direct row's tps.
func (w *workloadReport) fillRatios() {
	var direct float64
	for _, r := range w.Rows {
		if r.Target == targetDirect && r.Error == "" {
			direct = r.TPS
		}
	}
	for i := range w.Rows {
		if direct > 0 && w.Rows[i].Error == "" {
			w.Rows[i].Ratio = w.Rows[i].TPS / direct
		}
	}
}

// printWorkload writes one workload's table.
func printWorkload(out io.Writer, w *workloadReport, duration time.Duration) {
	fmt.Fprintf(out, "\n== %s (pgbench %v, %v) ==\n", w.Name, w.Args, duration)
	t := [][]string{{"target", "tps", "ratio to direct", "avg ms", "p50 ms", "p99 ms", ""}}
	for _, r := range w.Rows {
		if r.Error != "" {
			t = append(t, []string{r.Target, r.Error})
			continue
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		failed := ""
		if r.Failed > 0 {
			failed = fmt.Sprintf("(%d failed)", r.Failed)
		}
		t = append(t, []string{r.Target, fmt.Sprintf("%.0f", r.TPS), ratio,
			fmt.Sprintf("%.3f", r.AvgMs), fmt.Sprintf("%.3f", r.P50Ms), fmt.Sprintf("%.3f", r.P99Ms), failed})
	}
	printTable(out, t)
}

// printSysbench writes one MySQL workload's table.
func printSysbench(out io.Writer, w *sysbenchReport, duration time.Duration) {
	fmt.Fprintf(out, "\n== MariaDB: sysbench %s, %d threads, %v ==\n", w.Workload.Name, w.Threads, duration)
	if w.Workload.Note != "" {
		fmt.Fprintf(out, "(%s)\n", w.Workload.Note)
	}
	t := [][]string{{"target", "qps", "ratio to direct", "tps", "p95 ms", "statements per node"}}
	for _, r := range w.Rows {
		if r.Error != "" {
			t = append(t, []string{r.Target, r.Error})
			continue
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		var notes []string
		if r.IgnoredErrors > 0 {
			notes = append(notes, plural(r.IgnoredErrors, "error"))
		}
		if r.Reconnects > 0 {
			notes = append(notes, plural(r.Reconnects, "reconnect"))
		}
		extra := r.NodeShare
		if len(notes) > 0 {
			extra = "(" + strings.Join(notes, ", ") + ") " + extra
		}
		t = append(t, []string{r.Target, fmt.Sprintf("%.0f", r.QPS), ratio, fmt.Sprintf("%.0f", r.TPS),
			fmt.Sprintf("%.2f", r.P95Ms), extra})
	}
	printTable(out, t)
}

// printRSS writes the idle-connection memory table.
func printRSS(out io.Writer, rs []rssResult, want int) {
	fmt.Fprintf(out, "\n== resident memory with %d idle client connections ==\n", want)
	t := [][]string{{"target", "clients", "RSS before", "RSS after", "per connection", ""}}
	for _, r := range rs {
		if r.Clients == 0 && r.Error != "" {
			t = append(t, []string{r.Target, r.Error})
			continue
		}
		t = append(t, []string{r.Target, fmt.Sprint(r.Clients), mib(r.BeforeKiB), mib(r.AfterKiB),
			fmt.Sprintf("%.1f KiB", r.PerConnBytes/1024), r.Error})
	}
	printTable(out, t)
	fmt.Fprintln(out, "(a proxy needs an open-file limit above its client count; the proxies started here")
	fmt.Fprintln(out, " inherit this program's RLIMIT_NOFILE; run baton with ulimit -n / LimitNOFILE= likewise)")
}

// printTable writes rows with right-aligned columns; the last column is
// free text. A row of two cells is a target and a message (an error) that
// runs across the other columns without widening them.
func printTable(out io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if len(r) > 2 || i == 0 {
				width[i] = max(width[i], len(c))
			}
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			switch {
			case i == len(width)-1 || (len(r) == 2 && i == 1):
				b.WriteString("  " + c)
			default:
				fmt.Fprintf(&b, "  %*s", width[i], c)
			}
		}
		fmt.Fprintln(out, strings.TrimRight(b.String(), " "))
	}
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// writeJSON writes the report to path.
func writeJSON(path string, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// plural writes "1 error", "2 errors".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// manyReport is the many-clients table.
type manyReport struct {
	Clients  int          `json:"clients"`
	Active   int          `json:"active"`
	Duration string       `json:"duration"`
	RWShare  int          `json:"rw_percent"`
	Rows     []manyResult `json:"rows"`
}

// printMany writes the many-clients table, then each target's distinct errors and the source
// of its queue-wait figure.
func printMany(out io.Writer, m *manyReport) {
	fmt.Fprintf(out, "\n== many clients: %d connected, %d active (%d%% read-write transactions, the rest point reads), %s ==\n",
		m.Clients, m.Active, m.RWShare, m.Duration)
	fmt.Fprintln(out, "(baton: pool_mode transaction, pool.size 20 per node (+5 reserve after 3 s), reads on the 2 replicas;")
	fmt.Fprintln(out, " pgbouncer: pool_mode transaction, default_pool_size 20, primary only)")
	t := [][]string{{"target", "connected", "connect s", "errors", "tps", "read p50 ms", "read p99 ms", "tx p50 ms", "tx p99 ms", "RSS", "queue wait"}}
	for _, r := range m.Rows {
		if r.Skipped != "" && r.Connected == 0 {
			t = append(t, []string{r.Target, r.Skipped})
			continue
		}
		rss := "-"
		if r.RSSKiB > 0 {
			rss = mib(r.RSSKiB)
			if r.RSSBefore > 0 && r.Connected > 0 {
				rss += fmt.Sprintf(" (%.1f KiB/client)", float64(r.RSSKiB-r.RSSBefore)/float64(r.Connected))
			}
		}
		t = append(t, []string{r.Target, fmt.Sprint(r.Connected), fmt.Sprintf("%.1f", r.ConnectSecs), fmt.Sprint(r.errorCount()),
			fmt.Sprintf("%.0f", r.TPS), fmt.Sprintf("%.2f", r.ReadP50Ms), fmt.Sprintf("%.2f", r.ReadP99Ms),
			fmt.Sprintf("%.2f", r.TxP50Ms), fmt.Sprintf("%.2f", r.TxP99Ms), rss, r.QueueWait})
	}
	printTable(out, t)
	for _, r := range m.Rows {
		if r.Skipped != "" && r.Connected > 0 {
			fmt.Fprintf(out, "%s: %s\n", r.Target, r.Skipped)
		}
		for _, e := range sortedErrors(r.Errors) {
			fmt.Fprintf(out, "%s: %d × %s\n", r.Target, r.Errors[e], e)
		}
		if r.QueueDetail != "" {
			fmt.Fprintf(out, "%s queue wait: %s\n", r.Target, r.QueueDetail)
		}
		if r.RSSAfter > 0 {
			fmt.Fprintf(out, "%s RSS: %s before the clients, %s connected, %s after the active phase\n",
				r.Target, mib(r.RSSBefore), mib(r.RSSKiB), mib(r.RSSAfter))
		}
	}
	fmt.Fprintln(out, "(RSS: the proxy's VmRSS with every client connected, per client above what it was before;")
	fmt.Fprintln(out, " tps counts reads and transactions alike)")
}
