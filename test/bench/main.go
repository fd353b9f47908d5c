// Command bench compares baton with a direct connection to the primary and
// with PgBouncer, pgpool-II and HAProxy, all in one run against one
// three-node PostgreSQL cluster, and measures baton's memory with idle
// clients. It is a program, not a test:
//
//	go run ./test/bench                        # 10 s per pgbench run, all targets
//	go run ./test/bench -quick                 # 3 s per run
//	go run ./test/bench -only direct,baton -skip-rss -json bench.json
//
// Run it from the repository root with pgbench and the PostgreSQL server
// binaries installed (apt-get install postgresql pgbouncer pgpool2 haproxy);
// a missing peer only blanks its rows. It starts a primary and two replicas
// through test/cluster, initializes pgbench (scale 10) on the primary as the
// app user, waits until the replicas have replayed it, and starts:
//
//   - baton (bin/baton, built with "go build" when missing or with -rebuild),
//     with its defaults (pool_mode transaction, consistency read_your_writes),
//     reads routed to the replicas; as "baton-eventual" with consistency:
//     eventual, to show what the default costs; and as "baton-session" with
//     pool_mode: session;
//   - PgBouncer, pool_mode=transaction, in front of the primary;
//   - pgpool-II, streaming-replication mode, load balancing on, the primary
//     weighted 0 so reads go to the replicas;
//   - HAProxy, mode tcp, in front of the primary.
//
// For each workload (select-only with the simple and the extended protocol at
// 1 and 16 clients, then the default TPC-B-like script at 16 clients, then
// select-only at 16 clients with a new connection per transaction, -C) it runs
// pgbench against every target in turn and prints tps, the ratio to the
// direct connection, and the average and p99 latency computed from pgbench's
// per-transaction log. A target that cannot be started or a run that fails
// shows "error: …" in its row; the other rows go on.
//
// Last, it opens 5,000 idle client connections (startup and SCRAM login
// complete) to baton, and to PgBouncer for comparison, and prints the
// proxy's VmRSS before and after. The program raises its RLIMIT_NOFILE so
// that it and the proxies it starts can hold them; a baton run elsewhere
// needs the same (ulimit -n or systemd's LimitNOFILE=).
//
// Then the many-clients table (-skip-many leaves it out): 10,000 client
// connections (-many-clients) opened through each of direct, baton and
// PgBouncer at a bounded rate (-many-rate per second, 32 logins in flight),
// 2,000 of them (-many-active) running, for -many-duration, point reads by
// primary key on pgbench_accounts (extended protocol) and, for -many-rw
// percent of their operations, read-write transactions (BEGIN; UPDATE;
// SELECT; COMMIT, a round trip each), the others idle but connected. baton
// runs pool_mode: transaction with pool.size 20 per node, PgBouncer
// pool_mode=transaction with default_pool_size=20 in front of the primary;
// direct runs only when the primary's max_connections allows it, else the
// row says why. It prints clients connected, errors (each distinct text
// with its count), tps, client latency p50/p99 of reads and of transactions,
// the proxy's queue wait (baton: p99 from its baton_pool_wait_seconds
// histogram on the admin endpoint; PgBouncer: the mean and the largest
// maxwait it reports, having no histogram) and the proxy's RSS with every
// client connected. -quick makes it 500 clients, 100 active, 5 s.
//
// Then (-mysql, on by default; -skip-pg runs it alone) it starts a MariaDB
// primary and two replicas, fills 4 sysbench tables of 10,000 rows on the
// primary as the app user, waits until the replicas have applied them, and
// runs sysbench (installed as the "sysbench" package) oltp_point_select,
// oltp_read_only with --skip_trx=on (autocommit, so that baton may send its
// reads to the replicas; by default every oltp_* event is a BEGIN … COMMIT
// transaction, which baton keeps on the primary) and oltp_read_write, at 16
// threads, directly against the primary, through baton (engine: mysql) and
// through HAProxy (mode tcp, the primary only), and prints qps, the ratio
// to the direct connection and sysbench's p95 latency. -only and -duration
// apply to both engines.
//
// Last (-read-scaling, on by default; -scale-only runs it alone, -skip-pg and
// -mysql choose the engines), the read-scaling tables (scale.go): a fresh
// PostgreSQL primary and two replicas, and a MariaDB one, each node capped to
// -scale-cpu (25) % of one CPU with a cpu cgroup (v1 cpu.cfs_quota_us, or v2
// cpu.max), so that the nodes and not the shared machine bound throughput.
// pgbench -S (simple protocol, 16 clients) runs directly against the primary,
// through baton (defaults: reads on the two replicas), baton with
// primary_read_weight 1 (reads on all three nodes), PgBouncer and HAProxy (the
// primary) and pgpool-II (the replicas); sysbench oltp_point_select (16
// threads) directly, through both batons and HAProxy. Each row shows the
// rate, its ratio to the better of two direct runs (first and last) and
// whether it reaches 0.95 × the nodes serving its reads, with each node's CPU
// use as a share of its cap, how often it was throttled, and the proxy's CPU.
// Without root or a cpu cgroup it prints one "read scaling: skipped: …" line.
// The cgroups are removed afterwards.
//
// Every child process and temporary directory is removed on exit and on
// Ctrl-C (a second Ctrl-C exits at once; children die with the program).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
)

type options struct {
	duration   time.Duration
	only       []string
	skipRSS    bool
	batonPath  string
	rebuild    bool
	jsonPath   string
	scale      int
	rssClients int
	mysql      bool
	skipPG     bool
	skipBench  bool // skip the pgbench tables
	many       manyOptions
	skipMany   bool
	// readScaling: the read-scaling tables (scale.go); scaleOnly: nothing else.
	readScaling, scaleOnly bool
	scaleCPU               int  // each node's CPU cap in the read-scaling tables, % of one CPU
	scalePriority          bool // the read-scaling clients and proxies in a high-weight cgroup
}

func main() {
	var o options
	var quick bool
	var only string
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each pgbench and sysbench run")
	flag.BoolVar(&quick, "quick", false, "3 s per pgbench and sysbench run (overrides -duration)")
	flag.StringVar(&only, "only", strings.Join(allTargets, ","), "comma-separated targets to run: "+strings.Join(allTargets, ",")+
		" (MySQL: "+strings.Join(myTargets, ",")+")")
	flag.BoolVar(&o.mysql, "mysql", true, "also run the MariaDB sysbench tables, after the PostgreSQL ones")
	flag.BoolVar(&o.skipPG, "skip-pg", false, "skip PostgreSQL: run only the MariaDB sysbench tables")
	flag.BoolVar(&o.skipRSS, "skip-rss", false, "skip the idle-connection memory measurement")
	flag.StringVar(&o.batonPath, "baton", "bin/baton", "baton binary (built from ./cmd/baton when missing)")
	flag.BoolVar(&o.rebuild, "rebuild", false, "rebuild the baton binary even when it exists")
	flag.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	flag.IntVar(&o.scale, "scale", 10, "pgbench scale factor")
	flag.IntVar(&o.rssClients, "rss-clients", 5000, "idle client connections for the memory measurement")
	flag.BoolVar(&o.skipBench, "skip-pgbench", false, "skip the pgbench tables (the memory and many-clients tables still run)")
	flag.BoolVar(&o.skipMany, "skip-many", false, "skip the many-clients table")
	flag.IntVar(&o.many.clients, "many-clients", 10000, "many-clients table: client connections opened and kept")
	flag.IntVar(&o.many.active, "many-active", 2000, "many-clients table: how many of them run statements at once")
	flag.DurationVar(&o.many.duration, "many-duration", 30*time.Second, "many-clients table: how long the active clients run")
	flag.IntVar(&o.many.rate, "many-rate", 2000, "many-clients table: new connections per second at most")
	flag.IntVar(&o.many.rwShare, "many-rw", 20, "many-clients table: percent of operations that are read-write transactions")
	flag.BoolVar(&o.readScaling, "read-scaling", true, "also run the read-scaling tables (each database node capped to -scale-cpu % of one CPU; needs root and a cpu cgroup)")
	flag.BoolVar(&o.scaleOnly, "scale-only", false, "run only the read-scaling tables (with -skip-pg / -mysql=false choosing the engines)")
	flag.IntVar(&o.scaleCPU, "scale-cpu", 25, "read-scaling tables: each node's CPU cap, percent of one CPU")
	flag.BoolVar(&o.scalePriority, "scale-priority", true, "read-scaling tables: run the clients and proxies in a high-weight cpu cgroup (no cap), ahead of other work on the machine")
	flag.Parse()
	if o.scaleOnly {
		o.readScaling = true
	}
	o.many.parallel = 32
	if quick {
		o.duration = 3 * time.Second
		setIfDefault := func(name string, set func()) {
			explicit := false
			flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == name })
			if !explicit {
				set()
			}
		}
		setIfDefault("many-clients", func() { o.many.clients = 500 })
		setIfDefault("many-active", func() { o.many.active = 100 })
		setIfDefault("many-duration", func() { o.many.duration = 5 * time.Second })
		setIfDefault("rss-clients", func() { o.rssClients = 1000 })
	}
	if o.many.active > o.many.clients || o.many.clients < 1 {
		fmt.Fprintln(os.Stderr, "bench: -many-active must be between 0 and -many-clients, which must be ≥ 1")
		os.Exit(2)
	}
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(allTargets, name) {
			fmt.Fprintf(os.Stderr, "bench: unknown target %q in -only (want some of %s)\n", name, strings.Join(allTargets, ","))
			os.Exit(2)
		}
		o.only = append(o.only, name)
	}
	if len(o.only) == 0 {
		fmt.Fprintln(os.Stderr, "bench: -only selects no target")
		os.Exit(2)
	}
	if o.skipPG && !o.mysql {
		fmt.Fprintln(os.Stderr, "bench: -skip-pg with -mysql=false leaves nothing to run")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts the cleanup, a second one kills at once.
	go func() { <-ctx.Done(); stop() }()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run does the whole benchmark; it returns only after every child process
// and temporary directory is gone. A failure of the PostgreSQL part does not
// stop the MySQL part; an interruption stops both.
func run(ctx context.Context, o options) error {
	logger := log.New(os.Stderr, "bench: ", log.Ltime)
	logf := logger.Printf
	if err := raiseNoFile(max(65536, uint64(o.rssClients)+4096, uint64(o.many.clients)+4096)); err != nil {
		logf("warning: %v", err)
	}
	o.many.clients = fitNoFile(o.many.clients, logf)

	root, err := os.MkdirTemp("", "baton-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	// PgBouncer runs as another user and must reach its subdirectory.
	if err := os.Chmod(root, 0o711); err != nil {
		return err
	}
	// Build baton once for both engines.
	if o.rebuild && slices.Contains(o.only, targetBaton) {
		if err := ensureBaton(ctx, o.batonPath, true); err == nil {
			o.rebuild = false
		}
	}

	rep := &report{Started: time.Now(), Duration: o.duration.String(), Scale: o.scale}
	var errs []error
	if !o.skipPG && !o.scaleOnly {
		if err := runPG(ctx, o, root, rep, logf); err != nil {
			if ctx.Err() != nil {
				return err
			}
			logf("PostgreSQL: %v", err)
			errs = append(errs, fmt.Errorf("PostgreSQL: %w", err))
		}
	}
	if o.mysql && !o.scaleOnly && ctx.Err() == nil {
		if err := runMySQL(ctx, o, root, rep, logf); err != nil {
			if ctx.Err() != nil {
				return err
			}
			logf("MySQL: %v", err)
			errs = append(errs, fmt.Errorf("MySQL: %w", err))
		}
	}
	var scaling []scaleReport
	if o.readScaling && ctx.Err() == nil {
		var err error
		if scaling, err = runScale(ctx, o, root, logf); err != nil {
			if ctx.Err() != nil {
				return err
			}
			logf("%v", err)
			errs = append(errs, err)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}

	if o.jsonPath != "" {
		full := struct {
			*report
			ReadScaling []scaleReport `json:"read_scaling,omitempty"`
		}{rep, scaling}
		if err := writeJSONValue(o.jsonPath, full); err != nil {
			return fmt.Errorf("write %s: %w", o.jsonPath, err)
		}
	}
	return errors.Join(errs...)
}

// writeJSONValue writes v as indented JSON to path.
func writeJSONValue(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// runPG runs the PostgreSQL tables and the memory measurement, appending to
// rep.
func runPG(ctx context.Context, o options, root string, rep *report, logf func(string, ...any)) error {
	if findBinary("pgbench") == "" {
		return fmt.Errorf("pgbench not found (apt-get install postgresql-client)")
	}

	logf("starting PostgreSQL: primary and 2 replicas")
	pg, err := cluster.StartPG(ctx, cluster.PGOptions{
		Replicas: 2,
		// No TLS anywhere: pgbench, PgBouncer and pgpool-II connect in plaintext, and so
		// does baton (its default backend_tls, prefer, would otherwise encrypt).
		NoTLS: true,
		// Hold the scale-10 data set in shared buffers on every node.
		Settings: []string{"shared_buffers = '256MB'"},
		Logf:     logf,
	})
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer pg.Stop()

	logf("pgbench -i -s %d on the primary (port %d)", o.scale, pg.Primary.Port)
	if err := initPgbench(ctx, pg.Primary.Port, o.scale); err != nil {
		return fmt.Errorf("initialize pgbench: %w", err)
	}
	var replicaURLs []string
	e := &benchEnv{root: root, primary: pg.Primary.Port, logf: logf}
	for _, r := range pg.Replicas {
		replicaURLs = append(replicaURLs, r.SuperURL())
		e.replicas = append(e.replicas, r.Port)
	}
	if err := waitReplay(ctx, pg.Primary.SuperURL(), replicaURLs, 2*time.Minute); err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}

	targets := startTargets(ctx, e, o)
	defer func() {
		for _, t := range targets {
			if t.child != nil {
				t.child.stop()
			}
		}
	}()
	nodeNames := map[int]string{pg.Primary.Port: "primary"}
	for i, r := range pg.Replicas {
		nodeNames[r.Port] = fmt.Sprintf("replica%d", i+1)
	}
	for _, t := range targets {
		if t.unavailable == "" {
			logf("%s: a SELECT on a new connection is served by %s", t.name, servedBy(ctx, t.port, nodeNames))
		}
	}

	for _, w := range workloads {
		if o.skipBench {
			break
		}
		wr := workloadReport{workload: w}
		for _, t := range targets {
			r := row{Target: t.name}
			if t.unavailable != "" {
				r.Error = t.unavailable
			} else {
				logf("%s: %s", w.Name, t.name)
				r.runResult = runPgbench(ctx, w, t.port, o.duration, root)
				if r.Error == "" && t.child != nil {
					if err := t.child.exitErr(); err != nil {
						logf("%v", err)
						r.Error = "error: " + firstLine(err.Error())
					}
				}
			}
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted")
			}
			wr.Rows = append(wr.Rows, r)
		}
		wr.fillRatios()
		rep.Workloads = append(rep.Workloads, wr)
		printWorkload(os.Stdout, &wr, o.duration)
	}

	if !o.skipRSS {
		for _, t := range targets {
			if t.name != targetBaton && t.name != targetPgBouncer {
				continue
			}
			logf("%s: opening %d idle client connections", t.name, o.rssClients)
			rep.IdleRSS = append(rep.IdleRSS, measureIdleRSS(ctx, t, o.rssClients, 64))
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted")
			}
		}
		if len(rep.IdleRSS) > 0 {
			printRSS(os.Stdout, rep.IdleRSS, o.rssClients)
		}
	}

	if !o.skipMany {
		if err := runManyTable(ctx, o, e, targets, rep); err != nil {
			return err
		}
	}
	return nil
}

// runManyTable runs the many-clients table over direct, baton and pgbouncer (those selected).
func runManyTable(ctx context.Context, o options, e *benchEnv, targets []*target, rep *report) error {
	mr := manyReport{Clients: o.many.clients, Active: o.many.active, Duration: o.many.duration.String(), RWShare: o.many.rwShare}
	for _, t := range targets {
		var r manyResult
		var probe queueProbe
		rssPID := 0
		switch t.name {
		case targetDirect:
			mc, err := directMaxConnections(ctx, t.port)
			switch {
			case err != nil:
				r = manyResult{Target: t.name, Skipped: "error: " + firstLine(err.Error())}
			case mc < o.many.clients+10:
				r = manyResult{Target: t.name, Skipped: fmt.Sprintf("skipped: the primary's max_connections is %d, "+
					"below %d clients (PostgreSQL runs a process per connection; holding them all is what a pooler is for)", mc, o.many.clients)}
			}
		case targetBaton:
			probe = &batonProbe{adminPort: t.adminPort}
		case targetPgBouncer:
			probe = &pgbouncerProbe{port: t.port}
		default:
			continue
		}
		if r.Target == "" {
			if t.unavailable != "" {
				r = manyResult{Target: t.name, Skipped: t.unavailable}
			} else {
				if t.child != nil {
					rssPID = t.child.pid()
					logNoFile(t, o.many.clients, e.logf)
				}
				e.logf("many clients: %s", t.name)
				r = runMany(ctx, t.name, t.port, o.many, o.scale*100000, rssPID, probe, e.logf)
				if t.child != nil {
					if err := t.child.exitErr(); err != nil {
						e.logf("%v", err)
						r.Skipped = "error: " + firstLine(err.Error())
					}
				}
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted")
		}
		mr.Rows = append(mr.Rows, r)
	}
	rep.Many = &mr
	printMany(os.Stdout, &mr)
	return nil
}

// startTargets starts every selected target in the order of allTargets.
// Targets that fail to start are returned with their reason set.
func startTargets(ctx context.Context, e *benchEnv, o options) []*target {
	var ts []*target
	for _, name := range allTargets {
		if !slices.Contains(o.only, name) || ctx.Err() != nil {
			continue
		}
		var t *target
		switch name {
		case targetDirect:
			t = &target{name: name, port: e.primary}
		case targetBaton, targetBatonEventual, targetBatonSession:
			e.logf("starting %s (%s)", name, o.batonPath)
			t = startBaton(ctx, e, o.batonPath, o.rebuild, name)
		default:
			e.logf("starting %s", name)
			t = startPeer(ctx, e, name)
		}
		ts = append(ts, t)
	}
	return ts
}
