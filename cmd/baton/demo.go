package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// demoReady is the --ready-file document.
type demoReady struct {
	Postgres *demoEngine `json:"postgres,omitempty"`
}

type demoEngine struct {
	Proxy    string   `json:"proxy"`
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas"`
}

func cmdDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	cfgPath := fs.String("config", "configs/postgres.yaml", "configuration whose cluster settings the demo uses (node addresses are replaced)")
	ready := fs.String("ready-file", "", "write connection strings as JSON to this file once everything accepts connections")
	dir := fs.String("dir", "", "directory for the demo's data (default: a temporary directory, removed on exit)")
	listen := fs.String("listen", "127.0.0.1:6432", "baton's listen address (a free port is used when busy)")
	fs.Parse(args)

	cfg, err := topology.Load(*cfgPath)
	if err != nil {
		return err
	}
	cl := cfg.Clusters[0]
	if cl.Engine != topology.EnginePostgres {
		return fmt.Errorf("%s: the demo needs a postgres cluster first", *cfgPath)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	log := newLogger(cfg.LogLevel)
	fmt.Println("baton demo: starting a PostgreSQL primary and 2 streaming replicas …")
	pg, err := cluster.StartPG(ctx, cluster.PGOptions{
		Replicas: 2, BaseDir: *dir, Ports: []int{15432, 15433, 15434},
		AppUser: "app", AppPassword: "app", AppDB: "app",
		Logf: func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		return err
	}
	defer pg.Stop()

	nodes := make([]*topology.Node, 0, 3)
	for i, n := range pg.Nodes() {
		nodes = append(nodes, &topology.Node{Name: "pg" + strconv.Itoa(i+1), Address: n.Addr()})
	}
	cl.Nodes = nodes
	cl.Listen = freeOr(*listen)
	cl.Database = "app"
	inst, err := proxy.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	proxyURL := fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", inst.Clusters()[0].Addr())
	rd := demoReady{Postgres: &demoEngine{Proxy: proxyURL, Primary: pg.Primary.SuperURL()}}
	for _, r := range pg.Replicas {
		rd.Postgres.Replicas = append(rd.Postgres.Replicas, r.SuperURL())
	}
	if *ready != "" {
		b, _ := json.MarshalIndent(rd, "", "  ")
		tmp := *ready + ".tmp"
		if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err == nil {
			os.Rename(tmp, *ready)
		}
		defer os.Remove(*ready)
	}
	fmt.Printf(`
baton is ready.

  through baton:  psql '%[1]s'
  primary:        %[2]s
  replicas:       %[3]s
                  %[4]s

Try:
  psql '%[1]s' -c 'SELECT inet_server_port(), pg_is_in_recovery()'        # a read: a replica answers
  psql '%[1]s' -c 'CREATE TABLE IF NOT EXISTS t(x int); INSERT INTO t VALUES (1)'  # a write: the primary
  psql '%[1]s' -c 'BEGIN; SELECT inet_server_port(); COMMIT'             # a transaction: the primary
  psql '%[1]s' -c '/* baton:primary */ SELECT inet_server_port()'        # a routing hint

Data: %[5]s   Press Ctrl-C to stop everything.
`, proxyURL, pg.Primary.SuperURL(), rd.Postgres.Replicas[0], rd.Postgres.Replicas[1], filepath.Clean(pg.BaseDir))
	<-ctx.Done()
	fmt.Println("\nbaton demo: stopping …")
	inst.Shutdown(5 * time.Second)
	return nil
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
