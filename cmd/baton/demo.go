package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// demoReady is the --ready-file document.
type demoReady struct {
	Postgres *demoEngine `json:"postgres,omitempty"`
	MySQL    *demoEngine `json:"mysql,omitempty"`
	Admin    string      `json:"admin,omitempty"` // the admin server's URL
	Etcd     []string    `json:"etcd,omitempty"`  // the etcd client URLs (embedded unless configured)
}

type demoEngine struct {
	Proxy    string   `json:"proxy"`
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas"`
}

func cmdDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	cfgPath := fs.String("config", "configs/both.yaml", "configuration whose cluster settings the demo uses (node addresses are replaced); one postgres and/or one mysql cluster")
	engine := fs.String("engine", "", "only this engine of the configuration: postgres or mysql (default: all)")
	ready := fs.String("ready-file", "", "write connection strings as JSON to this file once everything accepts connections")
	dir := fs.String("dir", "", "directory for the demo's data (default: temporary directories, removed on exit)")
	listen := fs.String("listen", "127.0.0.1:6432", "baton's PostgreSQL listen address (a free port is used when busy)")
	myListen := fs.String("mysql-listen", "127.0.0.1:3306", "baton's MySQL listen address (a free port is used when busy)")
	adminListen := fs.String("admin-listen", "127.0.0.1:9090", "the admin endpoint's address (a free port is used when busy)")
	fs.Parse(args)

	cfg, err := topology.Load(*cfgPath)
	if err != nil {
		return err
	}
	var keep []*topology.Cluster
	for _, cl := range cfg.Clusters {
		if *engine == "" || string(cl.Engine) == *engine {
			keep = append(keep, cl)
		}
	}
	if len(keep) == 0 {
		return fmt.Errorf("%s: no %s cluster to demo", *cfgPath, *engine)
	}
	cfg.Clusters = keep
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := newLogger(cfg.LogLevel)
	logf := func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) }

	var rd demoReady
	var stops []func() error
	var pgPID, myPID func() int // the primaries' server processes, for the failover hint
	defer func() {
		for _, f := range stops {
			f()
		}
	}()
	// The clusters' application user is the configuration's first user, so baton's monitor user:
	// AppMonitor gives it the grants the README recommends (pg_monitor, SLAVE MONITOR), and the
	// demo starts like a correctly set-up deployment, without "health probe is limited".
	for _, cl := range cfg.Clusters {
		sub := func(name string) string {
			if *dir == "" {
				return ""
			}
			return *dir + "/" + name
		}
		switch cl.Engine {
		case topology.EnginePostgres:
			fmt.Println("baton demo: starting a PostgreSQL primary and 2 streaming replicas …")
			pg, err := cluster.StartPG(ctx, cluster.PGOptions{Replicas: 2, BaseDir: sub("postgres"),
				Ports: []int{15432, 15433, 15434}, AppUser: "app", AppPassword: "app", AppDB: "app", AppMonitor: true, Logf: logf})
			if err != nil {
				return err
			}
			stops = append(stops, pg.Stop)
			pgPID = pg.Primary.PID
			cl.Nodes = demoNodes("pg", pg.Nodes(), func(n *cluster.PGNode) string { return n.Addr() })
			if err := demoBackendTLS(cl, pg.TLS); err != nil {
				return err
			}
			cl.Listen = freeOr(*listen)
			rd.Postgres = &demoEngine{Primary: pg.Primary.SuperURL()}
			if err := demoAuthQueryPG(ctx, pg.Primary.SuperURL(), cl); err != nil {
				return err
			}
			for _, r := range pg.Replicas {
				rd.Postgres.Replicas = append(rd.Postgres.Replicas, r.SuperURL())
			}
		case topology.EngineMySQL:
			fmt.Println("baton demo: starting a MariaDB primary and 2 GTID replicas …")
			my, err := cluster.StartMariaDB(ctx, cluster.MyOptions{Replicas: 2, BaseDir: sub("mariadb"),
				Ports: []int{13306, 13307, 13308}, AppUser: "app", AppPassword: "app", AppDB: "app", AppMonitor: true, Logf: logf})
			if err != nil {
				return err
			}
			stops = append(stops, my.Stop)
			myPID = my.Primary.PID
			cl.Nodes = demoNodes("my", my.Nodes(), func(n *cluster.MyNode) string { return n.Addr() })
			if err := demoBackendTLS(cl, my.TLS); err != nil {
				return err
			}
			cl.Listen = freeOr(*myListen)
			rd.MySQL = &demoEngine{Primary: my.Primary.RootDSN()}
			if err := demoAuthQueryMy(ctx, my.Primary.RootDSN(), cl); err != nil {
				return err
			}
			for _, r := range my.Replicas {
				rd.MySQL.Replicas = append(rd.MySQL.Replicas, r.RootDSN())
			}
		}
		cl.Database = "app"
	}
	if cfg.Etcd.ListenClient != "" {
		cfg.Etcd.ListenClient = freeOr(cfg.Etcd.ListenClient)
	}
	inst, err := proxy.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	rd.Etcd = inst.EtcdURLs()
	if cfg.Admin.Enabled() {
		// The demo's admin endpoint is where `baton status` looks by default; the example
		// configs name other ports so that a `baton serve` beside the demo does not collide.
		cfg.Admin.Listen = freeOr(*adminListen)
	}
	adm := admin.New(inst, cfg.Admin, log)
	if cfg.Admin.Enabled() {
		if err := adm.Start(); err != nil {
			inst.Shutdown(5 * time.Second)
			return err
		}
		rd.Admin = adm.URL()
	}
	var b strings.Builder
	b.WriteString("\nbaton is ready.\n")
	for _, c := range inst.Clusters() {
		addr := c.Addr().String()
		switch c.Config.Engine {
		case topology.EnginePostgres:
			rd.Postgres.Proxy = fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", addr)
			fmt.Fprintf(&b, `
PostgreSQL through baton:  psql '%[1]s'
  primary:  %[2]s
  replicas: %[3]s
Try:
  psql '%[1]s' -c 'SELECT inet_server_port(), pg_is_in_recovery()'        # a read: a replica answers
  psql '%[1]s' -c 'CREATE TABLE IF NOT EXISTS t(x int); INSERT INTO t VALUES (1)'  # a write: the primary
  psql '%[1]s' -c 'BEGIN; SELECT inet_server_port(); COMMIT'             # a transaction: the primary
  psql '%[1]s' -c '/* baton:primary */ SELECT inet_server_port()'        # a routing hint
`, rd.Postgres.Proxy, rd.Postgres.Primary, strings.Join(rd.Postgres.Replicas, "\n            "))
		case topology.EngineMySQL:
			host, port, _ := net.SplitHostPort(addr)
			rd.MySQL.Proxy = fmt.Sprintf("app:app@tcp(%s)/app", addr)
			fmt.Fprintf(&b, `
MariaDB through baton:  mariadb -h %[1]s -P %[2]s -u app -papp app      (DSN %[3]s)
  primary:  %[4]s
  replicas: %[5]s
Try:
  mariadb -h %[1]s -P %[2]s -u app -papp app -e 'SELECT @@port'                        # a read: a replica
  mariadb -h %[1]s -P %[2]s -u app -papp app -e 'CREATE TABLE IF NOT EXISTS t (x INT); INSERT INTO t VALUES (@@port)'
  mariadb -h %[1]s -P %[2]s -u app -papp app -e 'BEGIN; SELECT @@port; COMMIT'          # the primary
`, host, port, rd.MySQL.Proxy, rd.MySQL.Primary, strings.Join(rd.MySQL.Replicas, "\n            "))
		}
		b.WriteString(demoAuthQueryTry(c.Config, addr))
	}
	if *ready != "" {
		js, _ := json.MarshalIndent(rd, "", "  ")
		tmp := *ready + ".tmp"
		if err := os.WriteFile(tmp, append(js, '\n'), 0o600); err == nil {
			os.Rename(tmp, *ready)
		}
		defer os.Remove(*ready)
	}
	if rd.Admin != "" {
		fmt.Fprintf(&b, "\nStatus:   baton status --admin %s\nMetrics:  curl %s/metrics\n", rd.Admin, rd.Admin)
		b.WriteString("\nFail over: kill the primary and watch baton promote a replica (writes pause, then resume):\n")
		for _, c := range inst.Clusters() {
			pid := pgPID
			if c.Config.Engine == topology.EngineMySQL {
				pid = myPID
			}
			if pid != nil {
				fmt.Fprintf(&b, "  kill -9 %d   # the %s primary;  then: watch -n 0.5 bin/baton status --admin %s\n", pid(), c.Config.Name, rd.Admin)
			}
		}
		fmt.Fprintf(&b, "Switch over (no data loss):  bin/baton switchover --admin %s --cluster %s\n", rd.Admin, inst.Clusters()[0].Config.Name)
	}
	b.WriteString("\nPress Ctrl-C to stop everything.\n")
	fmt.Print(b.String())
	<-ctx.Done()
	fmt.Println("\nbaton demo: stopping …")
	adm.MarkDraining()
	inst.Shutdown(5 * time.Second)
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	adm.Shutdown(actx)
	return nil
}

func demoNodes[N any](prefix string, nodes []N, addr func(N) string) []*topology.Node {
	out := make([]*topology.Node, 0, len(nodes))
	for i, n := range nodes {
		out = append(out, &topology.Node{Name: prefix + strconv.Itoa(i+1), Address: addr(n)})
	}
	return out
}

// freeOr returns addr if it can be bound now, else a free loopback port.
func freeOr(addr string) string {
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		return addr
	}
	p, err := cluster.FreePort()
	if err != nil {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}
