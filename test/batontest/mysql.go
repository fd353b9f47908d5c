package batontest

import (
	"fmt"
	"testing"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// MyConfig returns a baton configuration for a MariaDB cluster, listening on a free loopback
// port, with user app (mysql_native_password). mod may adjust it.
func MyConfig(c *cluster.MyCluster, mod func(*topology.Cluster)) (*topology.Config, error) {
	addrs := make([]string, 0, 3)
	for _, n := range c.Nodes() {
		addrs = append(addrs, n.Addr())
	}
	admin := adminUser{name: "root", password: c.Opts.RootPassword, replUser: "repl", replPassword: "repl"}
	return config("my", "mysql", "mysql_native_password", addrs, c.Opts.AppDB, c.Opts.AppUser, c.Opts.AppPassword, admin, mod)
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
