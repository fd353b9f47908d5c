package batontest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// MyConfig returns a baton configuration for a MariaDB cluster, listening on a free loopback
// port, with user app (mysql_native_password). mod may adjust it.
func MyConfig(c *cluster.MyCluster, mod func(*topology.Cluster)) (*topology.Config, error) {
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log_level: %s\netcd: {lease_ttl: 10s}\nclusters:\n  - name: my\n    engine: mysql\n    listen: 127.0.0.1:%d\n    database: %s\n    probe_interval: 200ms\n    nodes:\n", logLevel(), port, c.Opts.AppDB)
	for i, n := range c.Nodes() {
		fmt.Fprintf(&b, "      - {name: my%d, address: %q}\n", i+1, n.Addr())
	}
	fmt.Fprintf(&b, "    users:\n      - {name: %s, password: %q, auth: mysql_native_password}\n", c.Opts.AppUser, c.Opts.AppPassword)
	cfg, err := topology.Parse("batontest.yaml", []byte(b.String()))
	if err != nil {
		return nil, err
	}
	if mod != nil {
		mod(cfg.Clusters[0])
	}
	return cfg, nil
}

// DSN is a go-sql-driver DSN through baton as the cluster's app user; params are appended.
func (b *Baton) DSN(c *cluster.MyCluster, params string) string {
	d := fmt.Sprintf("%s:%s@tcp(%s)/%s", c.Opts.AppUser, c.Opts.AppPassword, b.Inst.Clusters()[0].Addr(), c.Opts.AppDB)
	if params != "" {
		d += "?" + params
	}
	return d
}

// StartMyBatonForTest starts baton in front of c for one test and stops it at the end.
func StartMyBatonForTest(t testing.TB, c *cluster.MyCluster, mod func(*topology.Cluster)) *Baton {
	t.Helper()
	cfg, err := MyConfig(c, mod)
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
