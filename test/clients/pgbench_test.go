package clients

import (
	"context"
	"regexp"
	"strings"
)

// pgbenchClient initializes pgbench's tables through the target and runs a short fixed number
// of transactions. Its report is reduced to what must match: the run's parameters, the number of
// transactions processed and failed. Latencies, tps and connection times are measurements of
// speed, which legitimately differ between a proxy and a direct connection.
var pgbenchClient = &client{
	name: "pgbench",
	pg:   true,
	need: needCmd("pgbench", "postgresql-15 (or postgresql-contrib)"),
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		mode := map[string]string{"tpcb_simple": "simple", "tpcb_extended": "extended", "tpcb_prepared": "prepared", "select_only_prepared": "prepared"}[sc.name]
		args := []string{"-n", "-c", "2", "-j", "1", "-t", "50", "-M", mode, "--max-tries=1"}
		if sc.name == "select_only_prepared" {
			args = append(args, "-S")
		}
		init := runProc(ctx, "", "", nil, "pgbench", "-i", "-s", "1", "-q", "-I", "dtgvp", tg.pgURL())
		// The run is another session than the initialization: without this wait, a read of the
		// new tables through baton may reach a replica that has not replayed them yet.
		if err := pgReplicated(ctx); err != nil {
			return init + "wait for the replicas: " + err.Error()
		}
		run := runProc(ctx, "", "", nil, "pgbench", append(args, tg.pgURL())...)
		return "init:\n" + keepLines(init, pgbenchInitKeep) + "run:\n" + keepLines(run, pgbenchRunKeep)
	},
	scens: []scenario{
		{name: "tpcb_simple", want: []string{"number of transactions actually processed: 100/100", "number of failed transactions: 0"}},
		{name: "tpcb_extended", want: []string{"number of transactions actually processed: 100/100"}},
		{name: "tpcb_prepared", want: []string{"number of transactions actually processed: 100/100"}},
		{name: "select_only_prepared", want: []string{"number of transactions actually processed: 100/100"}},
	},
}

// The lines of pgbench's output that must be the same: not "done in N s", tps, latency.
var (
	pgbenchInitKeep = regexp.MustCompile(`^(dropping|creating|generating|vacuuming|ERROR|FATAL|pgbench: error|EXIT|TIMEOUT)|^\d+ of \d+ tuples \(100%\)`)
	pgbenchRunKeep  = regexp.MustCompile(`^(transaction type|scaling factor|query mode|number of clients|number of threads|maximum number of tries|number of transactions|number of failed|ERROR|FATAL|pgbench: error|EXIT|TIMEOUT)`)
)

// elapsed is the timing tail of pgbench -i's progress line.
var elapsed = regexp.MustCompile(` \(elapsed [^)]*\)`)

func keepLines(s string, keep *regexp.Regexp) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if keep.MatchString(l) {
			l = elapsed.ReplaceAllString(l, "")
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
