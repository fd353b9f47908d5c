package failovertest

import (
	"context"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// TestPGFailoverBackendTLSVerifyFull: with backend_tls verify-full, a kill -9 of the primary
// fails over as usual — the probes, the failover steps (fence, promote, re-point) and the data
// path all connect with verified TLS — and on the new primary every connection of baton's is
// encrypted.
func TestPGFailoverBackendTLSVerifyFull(t *testing.T) {
	cluster.RequirePG(t)
	c := cluster.StartPGForTest(t, cluster.PGOptions{Fast: true})
	b := batontest.StartPGBatonForTest(t, c, func(cl *topology.Cluster) {
		cl.BackendTLS = topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: c.TLS.CAFile}
		if err := cl.ResolveBackendTLS(); err != nil {
			t.Fatal(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool {
		return st.Epoch >= 1 && st.Phase == topology.PhaseStable && st.Primary == "pg1"
	})
	conn, err := pgx.Connect(ctx, b.URL(c))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE tls_failover (x int)"); err != nil {
		t.Fatal(err)
	}

	if err := c.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, b, 30*time.Second, "failover published", func(s topology.ClusterState) bool {
		return s.Epoch > st.Epoch && s.Phase == topology.PhaseStable && s.Primary != "pg1" && s.Primary != ""
	})
	newP := c.Replicas[map[string]int{"pg2": 0, "pg3": 1}[st.Primary]]
	cluster.Eventually(t, 20*time.Second, "a write through baton on the new primary", func() (bool, error) {
		_, err := conn.Exec(ctx, "INSERT INTO tls_failover VALUES (1)")
		return err == nil, nil
	})

	direct, err := pgx.Connect(ctx, newP.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.Background())
	var failoverTLS, plain int
	if err := direct.QueryRow(ctx, `SELECT count(*) FILTER (WHERE s.ssl AND a.application_name = 'baton-failover'),
		count(*) FILTER (WHERE NOT s.ssl)
		FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
		WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()`).Scan(&failoverTLS, &plain); err != nil {
		t.Fatal(err)
	}
	if failoverTLS == 0 {
		t.Error("no TLS connection of the failover steps on the new primary")
	}
	if plain != 0 {
		t.Errorf("%d plaintext client connections on the new primary", plain)
	}
	var ssl bool
	if err := conn.QueryRow(ctx, "/* baton:primary */ SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("baton's connection to the new primary: ssl %v, %v", ssl, err)
	}
}
