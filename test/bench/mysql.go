package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/baton-proxy/baton/test/cluster"
)

// myTargets are the MySQL targets, in the order their rows are printed.
var myTargets = []string{targetDirect, targetBaton, targetHAProxy}

// runMySQL runs the sysbench tables: it starts a MariaDB primary and two
// replicas, prepares the sysbench tables on the primary, waits for the
// replicas, starts baton and HAProxy, and runs every workload against every
// selected target. Results are appended to rep.MySQL and printed as they
// come. It returns only after everything it started is gone.
func runMySQL(ctx context.Context, o options, root string, rep *report, logf func(string, ...any)) error {
	var selected []string
	for _, name := range myTargets {
		if slices.Contains(o.only, name) {
			selected = append(selected, name)
		}
	}
	if len(selected) == 0 {
		logf("MySQL: -only selects none of %v; skipped", myTargets)
		return nil
	}
	if findBinary("sysbench") == "" {
		return fmt.Errorf("sysbench not found (apt-get install sysbench)")
	}
	dir := filepath.Join(root, "mysql")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}

	logf("starting MariaDB: primary and 2 replicas")
	my, err := cluster.StartMariaDB(ctx, cluster.MyOptions{Replicas: 2, Fast: false, NoTLS: true, Logf: logf}) // plaintext, as HAProxy and sysbench
	if err != nil {
		return fmt.Errorf("start MariaDB: %w", err)
	}
	defer func() {
		if err := my.Stop(); err != nil {
			logf("stop MariaDB: %v", err)
		}
	}()

	logf("sysbench prepare (%d tables of %d rows) on the primary (port %d)", sysbenchTables, sysbenchTableSize, my.Primary.Port)
	if err := prepareSysbench(ctx, my.Primary.Port); err != nil {
		return fmt.Errorf("sysbench prepare: %w", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = my.WaitCaughtUp(waitCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}

	e := &benchEnv{root: dir, primary: my.Primary.Port, logf: logf}
	for _, r := range my.Replicas {
		e.replicas = append(e.replicas, r.Port)
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			if t.child != nil {
				t.child.stop()
			}
		}
	}()
	for _, name := range selected {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted")
		}
		var t *target
		switch name {
		case targetDirect:
			t = &target{name: name, port: e.primary}
		case targetBaton:
			logf("starting baton for MariaDB (%s)", o.batonPath)
			t = startMyBaton(ctx, e, o.batonPath, o.rebuild)
		case targetHAProxy:
			logf("starting haproxy for MariaDB")
			t = startMyHAProxy(ctx, e)
		}
		targets = append(targets, t)
	}
	nodeNames := map[int64]string{int64(my.Primary.ServerID): "primary"}
	for _, r := range my.Replicas {
		nodeNames[int64(r.ServerID)] = r.Name
	}
	for _, t := range targets {
		if t.unavailable == "" {
			logf("%s: a SELECT on a new MySQL connection is served by %s", t.name, myServedBy(ctx, t.port, nodeNames))
		}
	}

	for _, w := range sysbenchWorkloads {
		sr := sysbenchReport{Workload: w, Threads: sysbenchThreads}
		for _, t := range targets {
			r := sysbenchRow{Target: t.name}
			if t.unavailable != "" {
				r.Error = t.unavailable
			} else {
				logf("sysbench %s: %s", w.Name, t.name)
				before := nodeQuestions(ctx, my)
				r.sysbenchResult = runSysbench(ctx, w, t.port, o.duration, logf)
				r.NodeShare = questionShare(my, before, nodeQuestions(ctx, my))
				if r.NodeShare != "" {
					logf("sysbench %s: %s: statements per node: %s", w.Name, t.name, r.NodeShare)
				}
				if t.child != nil {
					if err := t.child.exitErr(); err != nil {
						logf("%v", err)
						if r.Error == "" {
							r.Error = "error: " + firstLine(err.Error())
						}
					}
				}
			}
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted")
			}
			sr.Rows = append(sr.Rows, r)
		}
		sr.fillRatios()
		rep.MySQL = append(rep.MySQL, sr)
		printSysbench(os.Stdout, &sr, o.duration)
	}
	return nil
}

// myDSN is the app user's go-sql-driver DSN for a loopback port.
func myDSN(port int) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = "app", "app"
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", fmt.Sprintf("127.0.0.1:%d", port), "app"
	cfg.Timeout = 10 * time.Second
	cfg.Logger = &mysql.NopLogger{} // failed attempts while polling are expected
	return cfg.FormatDSN()
}

// myBatonConfig is baton's YAML configuration for the MariaDB cluster.
func myBatonConfig(e *benchEnv, port int) string {
	cfg := fmt.Sprintf(`admin: {listen: "off"}
clusters:
  - name: my
    engine: mysql
    listen: 127.0.0.1:%d
    database: app
    nodes:
      - {name: primary, address: 127.0.0.1:%d}
`, port, e.primary)
	for i, p := range e.replicas {
		cfg += fmt.Sprintf("      - {name: replica%d, address: 127.0.0.1:%d}\n", i+1, p)
	}
	cfg += `    users:
      - {name: app, password: app, auth: mysql_native_password}
    pool: {max_per_node: 100}
`
	return cfg
}

// startMyBaton starts "baton serve" in front of the MariaDB cluster and
// waits until a ping through it succeeds. Failures are recorded in the
// target.
func startMyBaton(ctx context.Context, e *benchEnv, bin string, rebuild bool) *target {
	t := &target{name: targetBaton}
	err := func() error {
		if err := ensureBaton(ctx, bin, rebuild); err != nil {
			return err
		}
		port, err := cluster.FreePort()
		if err != nil {
			return err
		}
		t.port = port
		dir := filepath.Join(e.root, "baton")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		cfgPath := filepath.Join(dir, "baton.yaml")
		if err := writeFiles(dir, map[string]string{"baton.yaml": myBatonConfig(e, port)}); err != nil {
			return err
		}
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		c, err := startChild("baton", filepath.Join(dir, "baton.log"), syscall.SIGTERM,
			[]string{abs, "serve", "--config", cfgPath})
		if err != nil {
			return err
		}
		if err := waitReadyMy(ctx, c, myDSN(port), 60*time.Second); err != nil {
			c.stop()
			return err
		}
		t.child = c
		return nil
	}()
	if err != nil {
		e.logf("baton: %v", err)
		t.unavailable = "error: " + firstLine(err.Error())
	}
	return t
}

// startMyHAProxy starts HAProxy (mode tcp, the primary only) in front of
// the MariaDB primary, as startPeer does for PostgreSQL.
func startMyHAProxy(ctx context.Context, e *benchEnv) *target {
	t := &target{name: targetHAProxy}
	p := peers[targetHAProxy]
	bin := findBinary(p.binary)
	if bin == "" {
		t.unavailable = fmt.Sprintf("not installed (apt-get install %s)", p.pkg)
		return t
	}
	port, err := cluster.FreePort()
	if err == nil {
		t.port = port
		t.child, err = startHAProxy(ctx, e, bin, port)
	}
	if err == nil {
		if err = waitReadyMy(ctx, t.child, myDSN(port), 60*time.Second); err != nil {
			t.child.stop()
			t.child = nil
		}
	}
	if err != nil {
		e.logf("haproxy: %v", err)
		t.unavailable = "error: " + firstLine(err.Error())
	}
	return t
}

// waitReadyMy polls until a go-sql-driver ping through the server succeeds
// (handshake, authentication, COM_PING). It fails early when the child
// exits or the server rejects the credentials, and after timeout otherwise.
func waitReadyMy(ctx context.Context, c *child, dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxIdleConns(0) // every attempt is a new connection
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if err := c.exitErr(); err != nil {
			return err
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 3*time.Second)
		err := db.PingContext(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		last = err
		var myErr *mysql.MySQLError
		if errors.As(err, &myErr) && (myErr.Number == 1045 || myErr.Number == 1044) {
			return fmt.Errorf("%s rejects the login: %w; log tail:\n%s", c.name, err, c.logTail(10))
		}
		select {
		case <-ctx.Done():
			if err := c.exitErr(); err != nil {
				return err
			}
			return fmt.Errorf("%s not ready after %v: %v; log tail:\n%s", c.name, timeout, last, c.logTail(10))
		case <-tick.C:
		}
	}
}

// myServedBy names the node that answers an autocommit SELECT @@server_id
// sent through a target, to show where each proxy routes reads.
func myServedBy(ctx context.Context, port int, names map[int64]string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", myDSN(port))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer db.Close()
	var id int64
	if err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
		return "unknown (" + firstLine(err.Error()) + ")"
	}
	if n, ok := names[id]; ok {
		return n
	}
	return fmt.Sprintf("server_id %d", id)
}

// nodeQuestions reads every node's Questions counter (statements sent by
// clients, health probes included); nil when a node cannot be read.
func nodeQuestions(ctx context.Context, my *cluster.MyCluster) []int64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var qs []int64
	for _, n := range my.Nodes() {
		db, err := sql.Open("mysql", n.RootDSN())
		if err != nil {
			return nil
		}
		var name string
		var v int64
		err = db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &v)
		db.Close()
		if err != nil {
			return nil
		}
		qs = append(qs, v)
	}
	return qs
}

// questionShare describes how the statements of one run spread over the
// nodes ("primary 2%, replica1 49%, replica2 49%"), to show where a proxy
// sent them; "" when a counter is missing.
func questionShare(my *cluster.MyCluster, before, after []int64) string {
	nodes := my.Nodes()
	if len(before) != len(nodes) || len(after) != len(nodes) {
		return ""
	}
	var total int64
	for i := range nodes {
		total += after[i] - before[i]
	}
	if total <= 0 {
		return ""
	}
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = fmt.Sprintf("%s %.0f%%", n.Name, 100*float64(after[i]-before[i])/float64(total))
	}
	return strings.Join(parts, ", ")
}
