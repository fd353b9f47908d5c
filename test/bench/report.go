package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
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
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\ttps\tratio to direct\tavg ms\tp99 ms\t")
	for _, r := range w.Rows {
		if r.Error != "" {
			// A trailing cell without a tab is not aligned, so a long
			// message does not widen the columns.
			fmt.Fprintf(tw, "%s\t  %s\n", r.Target, r.Error)
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
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.3f\t%.3f\t%s\n", r.Target, r.TPS, ratio, r.AvgMs, r.P99Ms, failed)
	}
	tw.Flush()
}

// printRSS writes the idle-connection memory table.
func printRSS(out io.Writer, rs []rssResult, want int) {
	fmt.Fprintf(out, "\n== resident memory with %d idle client connections ==\n", want)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tclients\tRSS before\tRSS after\tper connection\t")
	for _, r := range rs {
		if r.Clients == 0 && r.Error != "" {
			fmt.Fprintf(tw, "%s\t  %s\n", r.Target, r.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.1f KiB\t%s\n", r.Target, r.Clients,
			mib(r.BeforeKiB), mib(r.AfterKiB), r.PerConnBytes/1024, r.Error)
	}
	tw.Flush()
	fmt.Fprintln(out, "(each proxy needs an open-file limit above the client count: this program raises its own")
	fmt.Fprintln(out, " RLIMIT_NOFILE and the proxies inherit it; run baton with ulimit -n / LimitNOFILE= likewise)")
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
