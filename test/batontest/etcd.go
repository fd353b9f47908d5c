package batontest

import (
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// EtcdOptions points a baton instance at an external etcd cluster (several instances share
// it) instead of the embedded single-member server.
type EtcdOptions struct {
	Endpoints []string      // client URLs of the etcd members
	Instance  string        // the instance's name among those sharing the etcd
	LeaseTTL  time.Duration // the session lease TTL; 0 keeps the configuration's (10 s)
}

// UseEtcd applies o to cfg.
func UseEtcd(cfg *topology.Config, o EtcdOptions) {
	cfg.Etcd.Endpoints = append([]string(nil), o.Endpoints...)
	cfg.Etcd.Instance = o.Instance
	if o.LeaseTTL > 0 {
		cfg.Etcd.LeaseTTL = topology.Duration(o.LeaseTTL)
	}
}

// StartPGBatonWithEtcdForTest starts a baton instance in front of c that shares the external
// etcd of o, on its own free listen port, and stops it at the end of the test.
func StartPGBatonWithEtcdForTest(t testing.TB, c *cluster.PGCluster, o EtcdOptions, mod func(*topology.Cluster)) *Baton {
	t.Helper()
	cfg, err := PGConfig(c, mod)
	if err != nil {
		t.Fatal(err)
	}
	UseEtcd(cfg, o)
	b, err := StartBaton(cfg)
	if err != nil {
		t.Fatalf("start baton instance %s: %v", o.Instance, err)
	}
	t.Cleanup(b.Stop)
	return b
}
