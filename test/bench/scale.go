package main

// The read-scaling table: every database node is capped to a fraction of one CPU with a cpu
// cgroup, so that a node, not the shared two-core machine, bounds throughput; then a
// select-only load runs directly against the primary and through each proxy. A proxy that
// spreads reads over k nodes should reach about k times the direct rate.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/baton-proxy/baton/test/cluster"
)

// scaleTarget is the part of the target (≥ 0.95 × nodes serving reads) a row must reach.
const scaleTarget = 0.95

// targetBatonPrimaryRead is baton with primary_read_weight: 1 (reads on all three nodes).
const targetBatonPrimaryRead = "baton-prw1"

// targetDirectAgain repeats the direct run after the others; the ratios divide by the higher
// of the two direct rates, so that one run slowed by the machine's other load does not
// flatter every proxy.
const targetDirectAgain = "direct-again"

// scaleRow is one line of a read-scaling table.
type scaleRow struct {
	Target string `json:"target"`
	// Nodes is how many nodes serve the target's reads.
	Nodes int     `json:"nodes_serving_reads"`
	Rate  float64 `json:"rate"` // pgbench tps or sysbench qps
	Ratio float64 `json:"ratio_to_direct,omitempty"`
	Pass  bool    `json:"meets_target"`
	// NodeCPU is each node's CPU use during the run as a share of its cap, in node order.
	NodeCPU []float64 `json:"node_cpu_of_cap,omitempty"`
	// NodeThrottled is each node's share of the CFS periods it ran in that ended with it
	// throttled (its quota used up).
	NodeThrottled []float64 `json:"node_throttled_periods,omitempty"`
	// ProxyCPU is the proxy's CPU use in cores (its processes and reaped children); HostBusy
	// the machine's busy share of all its CPUs.
	ProxyCPU float64 `json:"proxy_cores,omitempty"`
	HostBusy float64 `json:"host_busy"`
	Error    string  `json:"error,omitempty"`
}

// scaleReport is one read-scaling table.
type scaleReport struct {
	Engine    string     `json:"engine"`
	Workload  string     `json:"workload"`
	Unit      string     `json:"unit"` // of Rows[].Rate: tps or qps
	CPUQuota  int        `json:"node_cpu_percent"`
	Mechanism string     `json:"mechanism"`
	NodeNames []string   `json:"nodes"`
	Rows      []scaleRow `json:"rows"`
	Skipped   string     `json:"skipped,omitempty"`
}

// runScale runs the read-scaling tables (PostgreSQL unless -skip-pg, MariaDB with -mysql). It
// prints one "read scaling: skipped: …" line and returns nil when the nodes cannot be capped.
func runScale(ctx context.Context, o options, root string, logf func(string, ...any)) ([]scaleReport, error) {
	cg, why := newCPUCapper(o.scaleCPU)
	if cg == nil {
		fmt.Printf("\nread scaling: skipped: needs root and a cpu cgroup (%s)\n", why)
		return []scaleReport{{Skipped: why}}, nil
	}
	defer cg.removeAll(logf)
	if o.scalePriority {
		if err := cg.prioritizeSelf(); err != nil {
			logf("read scaling: cannot give the load generators and proxies CPU priority: %v", err)
		}
	}
	var out []scaleReport
	var errs []error
	if !o.skipPG {
		r, err := runPGScale(ctx, o, root, cg, logf)
		if r != nil {
			out = append(out, *r)
		}
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			errs = append(errs, fmt.Errorf("read scaling, PostgreSQL: %w", err))
		}
	}
	if o.mysql && ctx.Err() == nil {
		r, err := runMyScale(ctx, o, root, cg, logf)
		if r != nil {
			out = append(out, *r)
		}
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			errs = append(errs, fmt.Errorf("read scaling, MariaDB: %w", err))
		}
	}
	return out, errors.Join(errs...)
}

// scaleSelected reports whether a read-scaling row runs under -only (the baton rows follow
// "baton").
func scaleSelected(o options, name string) bool {
	switch name {
	case targetBatonPrimaryRead:
		name = targetBaton
	case targetDirectAgain:
		name = targetDirect
	}
	return slices.Contains(o.only, name)
}

// runPGScale: a PostgreSQL primary and two replicas, pgbench -S at 16 clients (simple
// protocol) directly and through baton, baton with primary_read_weight 1, PgBouncer, HAProxy
// and pgpool-II.
func runPGScale(ctx context.Context, o options, root string, cg *cpuCapper, logf func(string, ...any)) (*scaleReport, error) {
	if findBinary("pgbench") == "" {
		return nil, fmt.Errorf("pgbench not found (apt-get install postgresql-client)")
	}
	dir := filepath.Join(root, "scale-pg")
	if err := os.Mkdir(dir, 0o711); err != nil {
		return nil, err
	}
	logf("read scaling: starting PostgreSQL: primary and 2 replicas")
	// NoTLS: no target uses TLS (pgbench and PgBouncer run with sslmode disable; baton's
	// backend_tls default, prefer, would otherwise encrypt only baton's rows).
	pg, err := cluster.StartPG(ctx, cluster.PGOptions{Replicas: 2, NoTLS: true, Settings: []string{"shared_buffers = '256MB'"}, Logf: logf})
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer pg.Stop()
	logf("read scaling: pgbench -i -s %d on the primary", o.scale)
	if err := initPgbench(ctx, pg.Primary.Port, o.scale); err != nil {
		return nil, fmt.Errorf("initialize pgbench: %w", err)
	}
	e := &benchEnv{root: dir, primary: pg.Primary.Port, logf: logf}
	var replicaURLs []string
	for _, r := range pg.Replicas {
		replicaURLs = append(replicaURLs, r.SuperURL())
		e.replicas = append(e.replicas, r.Port)
	}
	if err := waitReplay(ctx, pg.Primary.SuperURL(), replicaURLs, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("wait for replicas: %w", err)
	}
	w := workload{"select-only, simple protocol, 16 clients", []string{"-S", "-M", "simple", "-c", "16", "-j", "2"}}
	// Warm every node before the caps (best effort: on a loaded machine a short run may
	// complete nothing, and the replicas hold the pages they replayed anyway).
	for _, n := range pg.Nodes() {
		if r := runPgbench(ctx, w, n.Port, 2*time.Second, dir); r.Error != "" {
			logf("read scaling: warm-up on %s: %s", n.Name, r.Error)
		}
	}

	rep := &scaleReport{Engine: "PostgreSQL", Workload: "pgbench -S -M simple -c 16 -j 2", Unit: "tps", CPUQuota: o.scaleCPU, Mechanism: cg.mechanism}
	var nodes []capped
	for _, n := range pg.Nodes() {
		rep.NodeNames = append(rep.NodeNames, n.Name)
		c, err := cg.capTree(fmt.Sprintf("pg-%s", n.Name), n.PID())
		if err != nil {
			return nil, fmt.Errorf("cap %s: %w", n.Name, err)
		}
		nodes = append(nodes, c)
	}
	logf("read scaling: every PostgreSQL node capped to %d%% of one CPU (%s)", o.scaleCPU, cg.mechanism)

	type spec struct {
		name  string
		nodes int
	}
	specs := []spec{{targetDirect, 1}, {targetBaton, 2}, {targetBatonPrimaryRead, 3}, {targetPgBouncer, 1}, {targetHAProxy, 1}, {targetPgpool, 2}, {targetDirectAgain, 1}}
	var direct float64
	for _, s := range specs {
		if !scaleSelected(o, s.name) {
			continue
		}
		if ctx.Err() != nil {
			return rep, fmt.Errorf("interrupted")
		}
		row := scaleRow{Target: s.name, Nodes: s.nodes}
		var t *target
		switch s.name {
		case targetDirect, targetDirectAgain:
			t = &target{name: s.name, port: e.primary}
		case targetBaton, targetBatonPrimaryRead:
			t = startScaleBaton(ctx, e, o, s.name, "postgres")
		default:
			t = startPeer(ctx, e, s.name)
		}
		if t.unavailable != "" {
			row.Error = t.unavailable
		} else {
			logf("read scaling: PostgreSQL %s", s.name)
			before := sampleCPU(nodes, t)
			res := runPgbench(ctx, w, t.port, o.duration, dir)
			after := sampleCPU(nodes, t)
			row.Rate, row.Error = res.TPS, res.Error
			if row.Error == "" && res.Failed > 0 {
				row.Error = fmt.Sprintf("error: %d transactions failed", res.Failed)
			}
			if row.Error == "" && t.child != nil {
				if err := t.child.exitErr(); err != nil {
					row.Error = "error: " + firstLine(err.Error())
				}
			}
			fillCPU(&row, before, after, o.scaleCPU)
		}
		if t.child != nil {
			t.child.stop()
		}
		if (s.name == targetDirect || s.name == targetDirectAgain) && row.Error == "" {
			direct = max(direct, row.Rate)
		}
		rep.Rows = append(rep.Rows, row)
	}
	rep.fillRatios(direct)
	printScale(os.Stdout, rep, o.duration)
	return rep, nil
}

// runMyScale: a MariaDB primary and two replicas, sysbench oltp_point_select at 16 threads
// directly and through baton, baton with primary_read_weight 1, and HAProxy.
func runMyScale(ctx context.Context, o options, root string, cg *cpuCapper, logf func(string, ...any)) (*scaleReport, error) {
	if findBinary("sysbench") == "" {
		return nil, fmt.Errorf("sysbench not found (apt-get install sysbench)")
	}
	dir := filepath.Join(root, "scale-my")
	if err := os.Mkdir(dir, 0o711); err != nil {
		return nil, err
	}
	logf("read scaling: starting MariaDB: primary and 2 replicas")
	my, err := cluster.StartMariaDB(ctx, cluster.MyOptions{Replicas: 2, NoTLS: true, Logf: logf}) // (NoTLS: as for PostgreSQL)
	if err != nil {
		return nil, fmt.Errorf("start MariaDB: %w", err)
	}
	defer func() {
		if err := my.Stop(); err != nil {
			logf("stop MariaDB: %v", err)
		}
	}()
	if err := prepareSysbench(ctx, my.Primary.Port); err != nil {
		return nil, fmt.Errorf("sysbench prepare: %w", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = my.WaitCaughtUp(waitCtx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("wait for replicas: %w", err)
	}
	e := &benchEnv{root: dir, primary: my.Primary.Port, logf: logf}
	for _, r := range my.Replicas {
		e.replicas = append(e.replicas, r.Port)
	}
	w := sysbenchWorkloads[0] // oltp_point_select
	// Warm every node's buffer pool before the caps (best effort, as for PostgreSQL).
	for _, n := range my.Nodes() {
		if r := runSysbench(ctx, w, n.Port, 2*time.Second, logf); r.Error != "" {
			logf("read scaling: warm-up on %s: %s", n.Name, r.Error)
		}
	}
	rep := &scaleReport{Engine: "MariaDB", Workload: fmt.Sprintf("sysbench oltp_point_select --threads=%d", sysbenchThreads), Unit: "qps",
		CPUQuota: o.scaleCPU, Mechanism: cg.mechanism}
	var nodes []capped
	for _, n := range my.Nodes() {
		rep.NodeNames = append(rep.NodeNames, n.Name)
		c, err := cg.capTree("my-"+n.Name, n.PID())
		if err != nil {
			return nil, fmt.Errorf("cap %s: %w", n.Name, err)
		}
		nodes = append(nodes, c)
	}
	logf("read scaling: every MariaDB node capped to %d%% of one CPU (%s)", o.scaleCPU, cg.mechanism)
	type spec struct {
		name  string
		nodes int
	}
	var direct float64
	for _, s := range []spec{{targetDirect, 1}, {targetBaton, 2}, {targetBatonPrimaryRead, 3}, {targetHAProxy, 1}, {targetDirectAgain, 1}} {
		if !scaleSelected(o, s.name) {
			continue
		}
		if ctx.Err() != nil {
			return rep, fmt.Errorf("interrupted")
		}
		row := scaleRow{Target: s.name, Nodes: s.nodes}
		var t *target
		switch s.name {
		case targetDirect, targetDirectAgain:
			t = &target{name: s.name, port: e.primary}
		case targetBaton, targetBatonPrimaryRead:
			t = startScaleBaton(ctx, e, o, s.name, "mysql")
		case targetHAProxy:
			t = startMyHAProxy(ctx, e)
		}
		if t.unavailable != "" {
			row.Error = t.unavailable
		} else {
			logf("read scaling: MariaDB %s", s.name)
			before := sampleCPU(nodes, t)
			res := runSysbench(ctx, w, t.port, o.duration, logf)
			after := sampleCPU(nodes, t)
			row.Rate, row.Error = res.QPS, res.Error
			if row.Error == "" && t.child != nil {
				if err := t.child.exitErr(); err != nil {
					row.Error = "error: " + firstLine(err.Error())
				}
			}
			fillCPU(&row, before, after, o.scaleCPU)
		}
		if t.child != nil {
			t.child.stop()
		}
		if (s.name == targetDirect || s.name == targetDirectAgain) && row.Error == "" {
			direct = max(direct, row.Rate)
		}
		rep.Rows = append(rep.Rows, row)
	}
	rep.fillRatios(direct)
	printScale(os.Stdout, rep, o.duration)
	return rep, nil
}

// startScaleBaton starts baton with its defaults (pool_mode transaction, read_your_writes)
// for the engine, and with primary_read_weight: 1 for targetBatonPrimaryRead.
func startScaleBaton(ctx context.Context, e *benchEnv, o options, name, engine string) *target {
	t := &target{name: name}
	err := func() error {
		if err := ensureBaton(ctx, o.batonPath, o.rebuild); err != nil {
			return err
		}
		port, err := cluster.FreePort()
		if err != nil {
			return err
		}
		t.port = port
		var cfg string
		if engine == "postgres" {
			if t.adminPort, err = cluster.FreePort(); err != nil {
				return err
			}
			cfg = batonConfig(e, port, t.adminPort, "read_your_writes", "transaction")
		} else {
			cfg = myBatonConfig(e, port)
		}
		if name == targetBatonPrimaryRead {
			at := "    nodes:\n"
			if !strings.Contains(cfg, at) {
				return fmt.Errorf("baton configuration has no %q line", strings.TrimSpace(at))
			}
			cfg = strings.Replace(cfg, at, "    primary_read_weight: 1\n"+at, 1)
		}
		dir := filepath.Join(e.root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		if err := writeFiles(dir, map[string]string{"baton.yaml": cfg}); err != nil {
			return err
		}
		abs, err := filepath.Abs(o.batonPath)
		if err != nil {
			return err
		}
		c, err := startChild(name, filepath.Join(dir, "baton.log"), syscall.SIGTERM,
			[]string{abs, "serve", "--config", filepath.Join(dir, "baton.yaml")})
		if err != nil {
			return err
		}
		if engine == "postgres" {
			err = waitReady(ctx, c, appConnString(port), 60*time.Second)
		} else {
			err = waitReadyMy(ctx, c, myDSN(port), 60*time.Second)
		}
		if err == nil {
			err = waitReadsSpread(ctx, engine, port, e.primary, 30*time.Second)
		}
		if err != nil {
			c.stop()
			return err
		}
		t.child = c
		return nil
	}()
	if err != nil {
		e.logf("%s: %v", name, err)
		t.unavailable = "error: " + firstLine(err.Error())
	}
	return t
}

// waitReadsSpread waits until a read through baton runs on a node other than the primary:
// its first health round may not have found the replicas readable yet, and reads until then
// go to the primary.
func waitReadsSpread(ctx context.Context, engine string, port, primary int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		at, err := servingPort(ctx, engine, port)
		if err == nil && at != primary {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no read reached a replica within %v (last: port %d, error %v)", timeout, at, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// servingPort runs one read of a benchmark table on a new connection and returns the port of
// the server that answered it.
func servingPort(ctx context.Context, engine string, port int) (int, error) {
	var at int
	if engine == "postgres" {
		cfg, err := pgx.ParseConfig(appConnString(port))
		if err != nil {
			return 0, err
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return 0, err
		}
		defer c.Close(context.Background())
		err = c.QueryRow(ctx, "SELECT inet_server_port() FROM pgbench_branches LIMIT 1").Scan(&at)
		return at, err
	}
	db, err := sql.Open("mysql", myDSN(port))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, "SELECT @@port FROM sbtest1 LIMIT 1").Scan(&at)
	return at, err
}

// fillRatios sets each row's ratio to direct and whether it meets the target.
func (r *scaleReport) fillRatios(direct float64) {
	for i := range r.Rows {
		row := &r.Rows[i]
		if direct > 0 && row.Error == "" && row.Rate > 0 {
			row.Ratio = row.Rate / direct
			row.Pass = row.Ratio >= scaleTarget*float64(row.Nodes)
		}
	}
}

// printScale writes one read-scaling table.
func printScale(out io.Writer, r *scaleReport, d time.Duration) {
	fmt.Fprintf(out, "\n== read scaling, %s: %s, %v; each node capped to %d%% of one CPU (%s) ==\n",
		r.Engine, r.Workload, d, r.CPUQuota, r.Mechanism)
	head := []string{"target", "nodes serving reads", r.Unit, "ratio to direct", "target ≥ 0.95 × nodes", ""}
	t := [][]string{head}
	for _, row := range r.Rows {
		if row.Error != "" {
			t = append(t, []string{row.Target, row.Error})
			continue
		}
		ratio, verdict := "-", "-"
		if row.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", row.Ratio)
			verdict = fmt.Sprintf("%.2f fail", scaleTarget*float64(row.Nodes))
			if row.Pass {
				verdict = fmt.Sprintf("%.2f pass", scaleTarget*float64(row.Nodes))
			}
		}
		var cpu []string
		for i, c := range row.NodeCPU {
			cell := fmt.Sprintf("%s %.0f%%", r.NodeNames[i], 100*c)
			if i < len(row.NodeThrottled) && len(row.NodeThrottled) == len(row.NodeCPU) {
				cell += fmt.Sprintf(" (throttled %.0f%%)", 100*row.NodeThrottled[i])
			}
			cpu = append(cpu, cell)
		}
		extra := "node CPU of cap: " + strings.Join(cpu, ", ")
		if row.ProxyCPU > 0 {
			extra += fmt.Sprintf("; proxy %.2f cores", row.ProxyCPU)
		}
		extra += fmt.Sprintf("; host %.0f%% busy", 100*row.HostBusy)
		t = append(t, []string{row.Target, strconv.Itoa(row.Nodes), fmt.Sprintf("%.0f", row.Rate), ratio, verdict, extra})
	}
	printTable(out, t)
	fmt.Fprintln(out, "(ratio: to the higher of the two direct runs; node CPU of cap: each node's CPU use during the run")
	fmt.Fprintln(out, " over its quota, ~100% when the node is the bottleneck; proxy: the proxy's processes, in cores)")
}

// cpuSample is the CPU time used so far by each capped node, by the proxy, and by the host.
type cpuSample struct {
	at         time.Time
	nodes      []float64  // seconds
	throttle   [][2]int64 // per node: cpu.stat nr_periods, nr_throttled
	proxy      float64    // seconds
	busy, all  float64    // host jiffies from /proc/stat
	proxyValid bool
}

func sampleCPU(nodes []capped, t *target) cpuSample {
	s := cpuSample{at: time.Now()}
	for _, n := range nodes {
		s.nodes = append(s.nodes, n.cpuSeconds())
		s.throttle = append(s.throttle, n.throttling())
	}
	if t.child != nil {
		s.proxy, s.proxyValid = treeCPUSeconds(t.child.pid()), true
	}
	s.busy, s.all = hostJiffies()
	return s
}

func fillCPU(row *scaleRow, a, b cpuSample, quota int) {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return
	}
	for i := range a.nodes {
		row.NodeCPU = append(row.NodeCPU, (b.nodes[i]-a.nodes[i])/secs/(float64(quota)/100))
		if p := b.throttle[i][0] - a.throttle[i][0]; p > 0 {
			row.NodeThrottled = append(row.NodeThrottled, float64(b.throttle[i][1]-a.throttle[i][1])/float64(p))
		}
	}
	if a.proxyValid {
		row.ProxyCPU = (b.proxy - a.proxy) / secs
	}
	if d := b.all - a.all; d > 0 {
		row.HostBusy = (b.busy - a.busy) / d
	}
}

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on every Linux platform Go runs on).
const clockTicks = 100

// procCPUSeconds is a process's CPU time, with that of its reaped children (a postmaster's
// exited backends).
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: state is field 3; utime 14 … cstime 17.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0
	}
	var sum float64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseFloat(v, 64)
		sum += n
	}
	return sum / clockTicks
}

// treeCPUSeconds sums procCPUSeconds over pid and its descendants.
func treeCPUSeconds(pid int) float64 {
	var sum float64
	for _, p := range processTree(pid) {
		sum += procCPUSeconds(p)
	}
	return sum
}

// processTree returns pid and every live descendant.
func processTree(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// hostJiffies returns the machine's busy and total CPU time from /proc/stat.
func hostJiffies() (busy, all float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i >= 8 {
			break // guest time is already in user
		}
		all += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, all
}

// cpuCapper creates cpu cgroups with a CFS quota and removes them again.
type cpuCapper struct {
	base      string // the cgroup directory the new groups are made in (this program's own)
	acctBase  string // cgroup v1: the same in the cpuacct hierarchy, "" when there is none
	v2        bool
	quota     int // percent of one CPU
	mechanism string
	made      []string
}

// capped is one node's cgroup, and with cgroup v1 its cpuacct group (acct; "" without one).
type capped struct{ dir, acct string }

// throttling reads the group's cpu.stat: periods with runnable tasks, and those of them in
// which the group was throttled.
func (c capped) throttling() [2]int64 {
	var out [2]int64
	b, _ := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
	for l := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "nr_periods":
			out[0] = n
		case "nr_throttled":
			out[1] = n
		}
	}
	return out
}

// cpuSeconds is the CPU time the group's processes have used since it was made: the cgroup's
// own counter (v1 cpuacct.usage, v2 cpu.stat usage_usec), which keeps the time of processes
// that have exited. Without one, the time of the processes in the group now, with their
// reaped children (which misses backends that exited but were not reaped yet).
func (c capped) cpuSeconds() float64 {
	if c.acct != "" {
		if b, err := os.ReadFile(filepath.Join(c.acct, "cpuacct.usage")); err == nil {
			if ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
				return float64(ns) / 1e9
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat")); err == nil {
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "usage_usec "); ok {
				if us, err := strconv.ParseInt(v, 10, 64); err == nil {
					return float64(us) / 1e6
				}
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return 0
	}
	var sum float64
	for _, l := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(l); err == nil {
			sum += procCPUSeconds(p)
		}
	}
	return sum
}

// newCPUCapper finds a usable cpu controller: cgroup v1 (/sys/fs/cgroup/cpu) or v2 with cpu
// enabled. nil and the reason when there is none or this is not root.
func newCPUCapper(quota int) (*cpuCapper, string) {
	if os.Geteuid() != 0 {
		return nil, fmt.Sprintf("running as uid %d", os.Geteuid())
	}
	if quota <= 0 || quota > 100 {
		return nil, fmt.Sprintf("-scale-cpu %d is not a percentage of one CPU", quota)
	}
	own := func(match func(controllers string) bool) string {
		b, _ := os.ReadFile("/proc/self/cgroup")
		for l := range strings.Lines(string(b)) {
			parts := strings.SplitN(strings.TrimSpace(l), ":", 3)
			if len(parts) == 3 && match(parts[1]) {
				return parts[2]
			}
		}
		return ""
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		p := own(func(c string) bool { return slices.Contains(strings.Split(c, ","), "cpu") })
		g := &cpuCapper{base: filepath.Join("/sys/fs/cgroup/cpu", p), quota: quota, mechanism: "cgroup v1 cpu.cfs_quota_us"}
		if _, err := os.Stat("/sys/fs/cgroup/cpuacct/cpuacct.usage"); err == nil && !strings.Contains(g.base, "cpuacct") {
			g.acctBase = filepath.Join("/sys/fs/cgroup/cpuacct", own(func(c string) bool { return slices.Contains(strings.Split(c, ","), "cpuacct") }))
		}
		return g, ""
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		if !slices.Contains(strings.Fields(string(b)), "cpu") {
			return nil, "cgroup v2 without the cpu controller"
		}
		base := filepath.Join("/sys/fs/cgroup", own(func(c string) bool { return c == "" }))
		sub, _ := os.ReadFile(filepath.Join(base, "cgroup.subtree_control"))
		if !slices.Contains(strings.Fields(string(sub)), "cpu") {
			if err := os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte("+cpu"), 0); err != nil {
				return nil, fmt.Sprintf("cannot enable the cpu controller under %s: %v", base, err)
			}
		}
		return &cpuCapper{base: base, v2: true, quota: quota, mechanism: "cgroup v2 cpu.max"}, ""
	}
	return nil, "no cpu cgroup controller mounted (/sys/fs/cgroup/cpu or cgroup v2)"
}

// prioritizeSelf moves this program into a group of high weight and no quota: the clients
// (pgbench, sysbench) and the proxies it starts from now on inherit it, so that on a machine
// busy with other work they, like the capped nodes, get the CPU they need and the rows compare
// the proxies rather than the moments they were measured at.
func (g *cpuCapper) prioritizeSelf() error {
	dir := filepath.Join(g.base, fmt.Sprintf("baton-bench-%d-load", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	g.made = append(g.made, dir)
	var err error
	if g.v2 {
		err = os.WriteFile(filepath.Join(dir, "cpu.weight"), []byte("10000"), 0)
	} else {
		err = os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte("262144"), 0)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	}
	return err
}

// capTree makes a group named name with the quota and moves pid and all its descendants into
// it; processes they fork later inherit the group.
func (g *cpuCapper) capTree(name string, pid int) (capped, error) {
	if pid == 0 {
		return capped{}, fmt.Errorf("the node is not running")
	}
	group := fmt.Sprintf("baton-bench-%d-%s", os.Getpid(), name)
	dir := filepath.Join(g.base, group)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return capped{}, err
	}
	g.made = append(g.made, dir)
	c := capped{dir: dir}
	if g.acctBase != "" {
		c.acct = filepath.Join(g.acctBase, group)
		if err := os.Mkdir(c.acct, 0o755); err != nil {
			return capped{}, err
		}
		g.made = append(g.made, c.acct)
	}
	quota := g.quota * 1000 // µs per 100 ms period
	// The group competes for the CPU as one entity with every other process of its parent:
	// with the default weight a busy machine gives the whole node less than its quota (it
	// did, by a third, beside other test suites). A high weight gives it its quota, no more.
	var err error
	if g.v2 {
		err = os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(fmt.Sprintf("%d 100000", quota)), 0)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "cpu.weight"), []byte("10000"), 0)
		}
	} else {
		err = os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte("100000"), 0)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(quota)), 0)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte("262144"), 0)
		}
	}
	if err != nil {
		return capped{}, err
	}
	// A process forked while the tree is being moved joins the group through its parent
	// unless the parent was not moved yet: repeat until a pass finds nothing new.
	moved := map[int]bool{}
	for pass := 0; pass < 5; pass++ {
		n := 0
		for _, p := range processTree(pid) {
			if moved[p] {
				continue
			}
			for _, d := range []string{c.dir, c.acct} {
				if d == "" {
					continue
				}
				if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(p)), 0); err != nil {
					if _, serr := os.Stat(fmt.Sprintf("/proc/%d", p)); serr != nil {
						break // it exited
					}
					return capped{}, fmt.Errorf("move process %d: %w", p, err)
				}
			}
			moved[p] = true
			n++
		}
		if n == 0 {
			break
		}
	}
	return c, nil
}

// removeAll moves any process left in the groups back to the parent group and removes them.
func (g *cpuCapper) removeAll(logf func(string, ...any)) {
	for _, dir := range slices.Backward(g.made) {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, p := range strings.Fields(string(b)) {
			_ = os.WriteFile(filepath.Join(filepath.Dir(dir), "cgroup.procs"), []byte(p), 0)
		}
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			logf("read scaling: remove cgroup %s: %v", dir, err)
		}
	}
	g.made = nil
}
