// Package batontest starts baton in-process in front of real clusters for integration tests.
package batontest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// PGConfig returns a baton configuration for c, listening on a free loopback port, with user
// app (scram-sha-256). mod may adjust it (after validation: the fields tests change are plain
// values).
func PGConfig(c *cluster.PGCluster, mod func(*topology.Cluster)) (*topology.Config, error) {
	addrs := make([]string, 0, 3)
	for _, n := range c.Nodes() {
		addrs = append(addrs, n.Addr())
	}
	admin := adminUser{name: "postgres", password: c.Opts.Password}
	return config("pg", "postgres", "scram-sha-256", addrs, c.Opts.AppDB, c.Opts.AppUser, c.Opts.AppPassword, admin, mod)
}

// adminUser is the superuser account the failover steps use (failover.user) and, for
// MySQL/MariaDB, the replication account baton attaches replicas with.
type adminUser struct {
	name, password         string
	replUser, replPassword string
}

// config renders and parses a one-cluster configuration: nodes <name>1…, the given user (and
// the admin account for failover), a free listen port, 200 ms probes and a 10 s etcd lease. The
// monitor user stays the first (app) user.
func config(name, engine, auth string, addrs []string, db, user, password string, admin adminUser, mod func(*topology.Cluster)) (*topology.Config, error) {
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log_level: %s\netcd: {lease_ttl: 10s}\nclusters:\n  - name: %s\n    engine: %s\n    listen: 127.0.0.1:%d\n    database: %s\n    probe_interval: 200ms\n    nodes:\n",
		logLevel(), name, engine, port, db)
	for i, a := range addrs {
		fmt.Fprintf(&b, "      - {name: %s%d, address: %q}\n", name, i+1, a)
	}
	fmt.Fprintf(&b, "    users:\n      - {name: %s, password: %q, auth: %s}\n", user, password, auth)
	if admin.name != "" {
		fmt.Fprintf(&b, "      - {name: %s, password: %q, auth: %s}\n", admin.name, admin.password, auth)
		fmt.Fprintf(&b, "    failover: {user: %s", admin.name)
		if admin.replUser != "" {
			fmt.Fprintf(&b, ", replication_user: %s, replication_password: %q", admin.replUser, admin.replPassword)
		}
		b.WriteString("}\n")
	}
	cfg, err := topology.Parse("batontest.yaml", []byte(b.String()))
	if err != nil {
		return nil, err
	}
	if mod != nil {
		mod(cfg.Clusters[0])
	}
	return cfg, nil
}

func logLevel() string {
	if v := os.Getenv("BATON_TEST_LOG"); v != "" {
		return v
	}
	return "warn"
}

// Baton is an in-process baton instance.
type Baton struct {
	Inst *proxy.Instance
	Cfg  *topology.Config
}

// StartBaton starts baton for cfg. A free port picked for a listener (or the embedded etcd) can
// be taken by another process before baton binds it; then the listeners get new free ports and
// the start is retried.
func StartBaton(cfg *topology.Config) (*Baton, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level(cfg.LogLevel)}))
	for attempt := 1; ; attempt++ {
		inst, err := proxy.Start(context.Background(), cfg, log)
		if err == nil {
			return &Baton{Inst: inst, Cfg: cfg}, nil
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
		for _, cl := range cfg.Clusters {
			port, perr := cluster.FreePort()
			if perr != nil {
				return nil, perr
			}
			cl.Listen = fmt.Sprintf("127.0.0.1:%d", port)
		}
	}
}

func level(s string) slog.Level {
	var l slog.Level
	l.UnmarshalText([]byte(s))
	return l
}

// URL is a connection string through baton as the cluster's app user.
func (b *Baton) URL(c *cluster.PGCluster) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", c.Opts.AppUser, c.Opts.AppPassword, b.Inst.Clusters()[0].Addr(), c.Opts.AppDB)
}

// Stop shuts baton down.
func (b *Baton) Stop() { b.Inst.Shutdown(5 * time.Second) }

// StartPGBatonForTest starts baton in front of c for one test and stops it at the end.
func StartPGBatonForTest(t testing.TB, c *cluster.PGCluster, mod func(*topology.Cluster)) *Baton {
	t.Helper()
	cfg, err := PGConfig(c, mod)
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartBaton(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}
