package pgtest

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Backend TLS: every mode against a server with TLS (the shared cluster, whose nodes all run
// ssl = on) and one without; verification failures; client certificates; proof by
// pg_stat_ssl, through baton, on the primary and on a replica.

const sslQuery = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

// nodeTLS resolves bt for a node at addr, as Load does.
func nodeTLS(t *testing.T, addr string, bt topology.BackendTLS) *topology.NodeTLS {
	t.Helper()
	n := &topology.Node{Name: "n1", Address: addr}
	cl := &topology.Cluster{Name: "c", Nodes: []*topology.Node{n}, BackendTLS: bt}
	if err := cl.ResolveBackendTLS(); err != nil {
		t.Fatal(err)
	}
	return n.TLS()
}

// startTLSBaton starts baton in front of c with backend_tls bt (mod may change more, nodes'
// own backend_tls included).
func startTLSBaton(t *testing.T, c *cluster.PGCluster, bt topology.BackendTLS, mod func(*topology.Cluster)) *batontest.Baton {
	t.Helper()
	cfg, err := batontest.PGConfig(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[0]
	cl.BackendTLS = bt
	if mod != nil {
		mod(cl)
	}
	if err := cl.ResolveBackendTLS(); err != nil {
		t.Fatal(err)
	}
	b, err := batontest.StartBaton(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// waitPrimary waits until b's probes have found a primary (TLS handshakes make the first
// probes slower on a loaded machine).
func waitPrimary(t *testing.T, b *batontest.Baton) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, "baton finds the primary", func() (bool, error) {
		s := b.Inst.Clusters()[0].Live.Load()
		return s != nil && s.PrimaryNode() != nil, nil
	})
}

func TestBackendTLSModes(t *testing.T) {
	plain := cluster.StartPGForTest(t, cluster.PGOptions{Replicas: -1, NoTLS: true})
	other, err := cluster.GenerateTLS(t.TempDir(), "app") // a CA that signed nothing the servers use
	if err != nil {
		t.Fatal(err)
	}
	ca := pg.TLS.CAFile
	type want int
	const (
		tlsOn want = iota
		tlsOff
		fails
	)
	for _, tc := range []struct {
		name           string
		bt             topology.BackendTLS
		withTLS, noTLS want
		errText        []string // in the error against the server with TLS, when it fails
	}{
		{"disable", topology.BackendTLS{Mode: topology.TLSDisable}, tlsOff, tlsOff, nil},
		{"prefer", topology.BackendTLS{Mode: topology.TLSPrefer}, tlsOn, tlsOff, nil},
		{"default", topology.BackendTLS{}, tlsOn, tlsOff, nil},
		{"require", topology.BackendTLS{Mode: topology.TLSRequire}, tlsOn, fails, nil},
		// verify-ca checks the chain, not the name.
		{"verify-ca", topology.BackendTLS{Mode: topology.TLSVerifyCA, CAFile: ca, ServerName: "wrong.example"}, tlsOn, fails, nil},
		{"verify-full", topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: ca}, tlsOn, fails, nil},
		{"verify-full localhost", topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: ca, ServerName: "localhost"}, tlsOn, fails, nil},
		{"verify-full wrong server_name", topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: ca, ServerName: "wrong.example"}, fails, fails,
			[]string{"node n1", "verify-full (server_name wrong.example)", "certificate is valid for", "not wrong.example"}},
		{"verify-ca other CA", topology.BackendTLS{Mode: topology.TLSVerifyCA, CAFile: other.CAFile}, fails, fails,
			[]string{"node n1", "TLS handshake", "certificate signed by unknown authority"}},
		{"verify-full other CA", topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: other.CAFile}, fails, fails,
			[]string{"certificate signed by unknown authority"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, srv := range []struct {
				name string
				node *cluster.PGNode
				want want
			}{{"TLS server", pg.Primary, tc.withTLS}, {"plaintext server", plain.Primary, tc.noTLS}} {
				nt := nodeTLS(t, srv.node.Addr(), tc.bt)
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				conn, err := health.ConnectPG(ctx, srv.node.Addr(), "postgres", pg.Opts.Password, "postgres", "baton-test", health.PGWithTLS(nt))
				cancel()
				if srv.want == fails {
					if err == nil {
						conn.Close(context.Background())
						t.Fatalf("%s: connected", srv.name)
					}
					want := tc.errText
					if srv.node == plain.Primary {
						want = []string{"node n1", "does not offer TLS", "backend_tls.mode is " + string(nodeTLS(t, "127.0.0.1:1", tc.bt).Mode)}
					}
					for _, w := range want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("%s: error %q lacks %q", srv.name, err, w)
						}
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", srv.name, err)
				}
				res := conn.ExecParams(t.Context(), sslQuery, nil, nil, nil, nil).Read()
				conn.Close(context.Background())
				if res.Err != nil || len(res.Rows) != 1 {
					t.Fatalf("%s: %v %v", srv.name, res.Err, res.Rows)
				}
				if got := string(res.Rows[0][0]) == "t"; got != (srv.want == tlsOn) {
					t.Errorf("%s: pg_stat_ssl.ssl = %v, want %v", srv.name, got, srv.want == tlsOn)
				}
			}
		})
	}

	// Through baton the client sees the error, naming the node and the mode (the probes met it
	// first: no node is usable), at once.
	t.Run("require through baton", func(t *testing.T) {
		b := startTLSBaton(t, plain, topology.BackendTLS{Mode: topology.TLSRequire}, nil)
		began := time.Now()
		c, err := pgx.Connect(ctxT(t), b.URL(plain))
		if err == nil {
			defer c.Close(context.Background())
			_, err = c.Exec(ctxT(t), "SELECT 1")
		}
		if err == nil {
			t.Fatal("a statement ran over plaintext with mode require")
		}
		for _, w := range []string{"pg1", "does not offer TLS", "backend_tls.mode is require"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("the error took %v (held in the failover buffer?)", d)
		}
	})
	t.Run("verify-full wrong server_name through baton", func(t *testing.T) {
		b := startTLSBaton(t, pg, topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: ca, ServerName: "wrong.example"}, nil)
		c, err := pgx.Connect(ctxT(t), b.URL(pg))
		if err == nil {
			defer c.Close(context.Background())
			_, err = c.Exec(ctxT(t), "/* baton:primary */ SELECT 1")
		}
		if err == nil || !strings.Contains(err.Error(), "certificate is valid for") || !strings.Contains(err.Error(), "wrong.example") {
			t.Fatalf("error %v; want the certificate error", err)
		}
	})
}

// verify-full through baton: the primary's and a replica's backend connections, the health
// probes and a cancel request all run on TLS.
func TestBackendTLSEncryptedThroughBaton(t *testing.T) {
	b := startTLSBaton(t, pg, topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: pg.TLS.CAFile}, nil)
	waitPrimary(t, b)
	c, err := pgx.Connect(ctxT(t), b.URL(pg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := ctxT(t)
	replicaPorts := map[int]bool{}
	for _, r := range pg.Replicas {
		replicaPorts[r.Port] = true
	}
	for _, tc := range []struct {
		name, hint string
		replica    bool
	}{{"primary", "/* baton:primary */ ", false}, {"replica", "/* baton:replica */ ", true}} {
		var ssl bool
		var port int
		if err := c.QueryRow(ctx, tc.hint+"SELECT s.ssl, inet_server_port() FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()").Scan(&ssl, &port); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if replicaPorts[port] != tc.replica {
			t.Fatalf("%s: the query ran on port %d", tc.name, port)
		}
		if !ssl {
			t.Errorf("%s (port %d): baton's backend connection is not TLS", tc.name, port)
		}
	}
	// A write, to be sure the primary's pool is the one that served it.
	if _, err := c.Exec(ctx, "CREATE TEMP TABLE tls_probe(x int)"); err != nil {
		t.Fatal(err)
	}
	var ssl bool
	if err := c.QueryRow(ctx, sslQuery).Scan(&ssl); err != nil || !ssl {
		t.Fatalf("pinned to the primary: ssl %v, %v", ssl, err)
	}

	// The health probes: every node has a baton-monitor connection, and none is plaintext.
	for _, n := range pg.Nodes() {
		d := direct(t, n)
		deadline := time.Now().Add(10 * time.Second)
		for {
			var on, off int
			if err := d.QueryRow(ctx, `SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
				FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'baton-monitor'`).Scan(&on, &off); err != nil {
				t.Fatal(err)
			}
			if off > 0 {
				t.Fatalf("%s: %d plaintext baton-monitor connections", n.Name, off)
			}
			if on > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no baton-monitor connection", n.Name)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(50 * time.Millisecond): // polling the server's view
			}
		}
	}

	// A cancel request reaches the statement (baton sends it on a new TLS connection).
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(context.Background(), "/* baton:primary */ SELECT pg_sleep(20) AS tls_cancel_me")
		done <- err
	}()
	d := direct(t, pg.Primary)
	for {
		var n int
		if err := d.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%tls_cancel_me%' AND pid <> pg_backend_pid()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the statement ended before it was cancelled: %v", err)
		case <-ctx.Done():
			t.Fatal("the statement never started")
		case <-time.After(20 * time.Millisecond): // polling the server's view
		}
	}
	if err := c.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("cancelled statement: %v; want 57014", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancel request did not cancel the statement")
	}
	nt := nodeTLS(t, pg.Primary.Addr(), topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: pg.TLS.CAFile})
	cc, err := health.DialPGCancel(ctx, nt, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cc.(*tls.Conn); !ok {
		t.Errorf("cancel connection is %T, not TLS", cc)
	}
	cc.Close()
}

// PostgreSQL cert authentication (hostssl … cert): baton logs in with its client certificate;
// without one the server refuses.
func TestBackendTLSClientCertificate(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{Replicas: -1, HBA: []string{
		"hostssl all app 127.0.0.1/32 cert",
		"host    all app 127.0.0.1/32 reject",
	}})
	bt := topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: c.TLS.CAFile, CertFile: c.TLS.ClientCert, KeyFile: c.TLS.ClientKey}
	b := startTLSBaton(t, c, bt, nil)
	waitPrimary(t, b)
	conn, err := pgx.Connect(ctxT(t), b.URL(c))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ssl bool
	var user string
	if err := conn.QueryRow(ctxT(t), "SELECT s.ssl, s.client_dn FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()").Scan(&ssl, &user); err != nil {
		t.Fatal(err)
	}
	if !ssl || !strings.Contains(user, "CN=app") {
		t.Fatalf("ssl %v, client_dn %q", ssl, user)
	}

	// Without the certificate the server refuses (baton's probes would too: no primary).
	bt.CertFile, bt.KeyFile = "", ""
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pc, err := health.ConnectPG(ctx, c.Primary.Addr(), "app", "app", "app", "baton-test", health.PGWithTLS(nodeTLS(t, c.Primary.Addr(), bt)))
	if err == nil {
		pc.Close(context.Background())
		t.Fatal("connected without a client certificate")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a client certificate: %v", err)
	}
}
