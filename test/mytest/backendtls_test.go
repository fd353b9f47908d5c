package mytest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// Backend TLS with MariaDB: every mode against a server with TLS (the shared cluster, whose
// nodes all have ssl_cert/ssl_key) and one without; verification failures; REQUIRE X509; proof
// by Ssl_cipher, through baton, on the primary and on a replica.

// myNodeTLS resolves bt for a node at addr, as Load does.
func myNodeTLS(t *testing.T, addr string, bt topology.BackendTLS) *topology.NodeTLS {
	t.Helper()
	n := &topology.Node{Name: "n1", Address: addr}
	cl := &topology.Cluster{Name: "c", Nodes: []*topology.Node{n}, BackendTLS: bt}
	if err := cl.ResolveBackendTLS(); err != nil {
		t.Fatal(err)
	}
	return n.TLS()
}

// startMyTLSBaton starts baton in front of c with backend_tls bt; mod may change more.
func startMyTLSBaton(t *testing.T, c *cluster.MyCluster, bt topology.BackendTLS, mod func(*topology.Cluster)) *batontest.Baton {
	t.Helper()
	cfg, err := batontest.MyConfig(c, nil)
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

// sslCipher reads the connection's Ssl_cipher with SHOW SESSION STATUS.
func sslCipher(t *testing.T, ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, prefix string) string {
	t.Helper()
	var name, cipher string
	if err := q.QueryRowContext(ctx, prefix+"SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatalf("SHOW SESSION STATUS: %v", err)
	}
	return cipher
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
	plain := cluster.StartMariaDBForTest(t, cluster.MyOptions{Replicas: -1, NoTLS: true})
	other, err := cluster.GenerateTLS(t.TempDir(), "app")
	if err != nil {
		t.Fatal(err)
	}
	ca := my.TLS.CAFile
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
		{"verify-ca", topology.BackendTLS{Mode: topology.TLSVerifyCA, CAFile: ca, ServerName: "wrong.example"}, tlsOn, fails, nil},
		{"verify-full", topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: ca}, tlsOn, fails, nil},
		{"verify-full wrong server_name", topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: ca, ServerName: "wrong.example"}, fails, fails,
			[]string{"node n1", "verify-full (server_name wrong.example)", "certificate is valid for", "not wrong.example"}},
		{"verify-ca other CA", topology.BackendTLS{Mode: topology.TLSVerifyCA, CAFile: other.CAFile}, fails, fails,
			[]string{"node n1", "TLS handshake", "certificate signed by unknown authority"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, srv := range []struct {
				name string
				node *cluster.MyNode
				want want
			}{{"TLS server", my.Primary, tc.withTLS}, {"plaintext server", plain.Primary, tc.noTLS}} {
				// The probes' and the failover steps' way in (go-sql-driver).
				cfg := health.MyConfig(srv.node.Addr(), "app", "app", "app")
				cfg.Logger = &mysql.NopLogger{}
				conn, err := health.MyConnector(cfg, myNodeTLS(t, srv.node.Addr(), tc.bt))
				if err != nil {
					t.Fatal(err)
				}
				db := sql.OpenDB(conn)
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				var name, cipher string
				err = db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher)
				cancel()
				db.Close()
				if srv.want == fails {
					if err == nil {
						t.Fatalf("%s: connected", srv.name)
					}
					want := tc.errText
					if srv.node == plain.Primary {
						want = []string{"node n1", "does not offer TLS", "backend_tls.mode is " + string(myNodeTLS(t, "127.0.0.1:1", tc.bt).Mode)}
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
				if (cipher != "") != (srv.want == tlsOn) {
					t.Errorf("%s: Ssl_cipher %q, want TLS %v", srv.name, cipher, srv.want == tlsOn)
				}
			}
		})
	}

	// The data path (proxy/mywire's handshake): prefer against a server without TLS works in
	// plaintext; require fails with the node and the mode.
	t.Run("prefer through baton, plaintext server", func(t *testing.T) {
		b := startMyTLSBaton(t, plain, topology.BackendTLS{Mode: topology.TLSPrefer}, nil)
		waitPrimary(t, b)
		db := cluster.OpenMySQL(t, b.DSN(plain, ""))
		if c := sslCipher(t, ctxT(t), db, "/* baton:primary */ "); c != "" {
			t.Fatalf("Ssl_cipher %q on a server without TLS", c)
		}
	})
	// With mode require no connection to the node succeeds, the probes' included: the node's
	// state names the node and the mode (baton status shows it), and a statement fails once
	// the failover buffer's window (short here) is over.
	t.Run("require through baton, plaintext server", func(t *testing.T) {
		b := startMyTLSBaton(t, plain, topology.BackendTLS{Mode: topology.TLSRequire}, func(cl *topology.Cluster) {
			cl.Buffer.Window = topology.Duration(300 * time.Millisecond)
		})
		db := cluster.OpenMySQL(t, b.DSN(plain, ""))
		if _, err := db.ExecContext(ctxT(t), "SELECT 1"); err == nil {
			t.Fatal("a statement ran over plaintext with mode require")
		}
		snap := b.Inst.Clusters()[0].Live.Load()
		if snap == nil || len(snap.Nodes) != 1 {
			t.Fatalf("snapshot %+v", snap)
		}
		for _, w := range []string{"node my1", "does not offer TLS", "backend_tls.mode is require"} {
			if !strings.Contains(snap.Nodes[0].LastErr, w) {
				t.Errorf("node state error %q lacks %q", snap.Nodes[0].LastErr, w)
			}
		}
	})
}

// verify-full through baton: the primary's and a replica's backend connections are TLS.
func TestBackendTLSEncryptedThroughBaton(t *testing.T) {
	b := startMyTLSBaton(t, my, topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: my.TLS.CAFile}, nil)
	waitPrimary(t, b)
	db := cluster.OpenMySQL(t, b.DSN(my, ""))
	ctx := ctxT(t)
	replicaPorts := map[int]bool{}
	for _, r := range my.Replicas {
		replicaPorts[r.Port] = true
	}
	for _, tc := range []struct {
		name, hint string
		replica    bool
	}{{"primary", "/* baton:primary */ ", false}, {"replica", "/* baton:replica */ ", true}} {
		var cipher string
		var port int
		if err := db.QueryRowContext(ctx, tc.hint+"SELECT VARIABLE_VALUE, @@port FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'").Scan(&cipher, &port); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if replicaPorts[port] != tc.replica {
			t.Fatalf("%s: ran on port %d", tc.name, port)
		}
		if cipher == "" {
			t.Errorf("%s (port %d): baton's backend connection is not TLS", tc.name, port)
		}
		if c := sslCipher(t, ctx, db, tc.hint); c == "" {
			t.Errorf("%s: SHOW SESSION STATUS LIKE 'Ssl_cipher' is empty", tc.name)
		}
	}
}

// REQUIRE X509: baton logs in with its client certificate; without one the server refuses.
func TestBackendTLSClientCertificate(t *testing.T) {
	ctx := ctxT(t)
	root := cluster.OpenMySQL(t, my.Primary.RootDSN())
	for _, q := range []string{
		"CREATE USER IF NOT EXISTS 'certapp'@'%' IDENTIFIED BY 'certapp' REQUIRE X509",
		"GRANT SELECT ON app.* TO 'certapp'@'%'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { root.ExecContext(context.Background(), "DROP USER IF EXISTS 'certapp'@'%'") })
	if err := my.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	addUser := func(cl *topology.Cluster) {
		cl.Users = append(cl.Users, &topology.User{Name: "certapp", Password: "certapp", Auth: "mysql_native_password",
			BackendUser: "certapp", BackendPassword: "certapp"})
	}
	dsn := func(b *batontest.Baton) string {
		return "certapp:certapp@tcp(" + b.Inst.Clusters()[0].Addr().String() + ")/app"
	}
	bt := topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: my.TLS.CAFile, CertFile: my.TLS.ClientCert, KeyFile: my.TLS.ClientKey}
	b := startMyTLSBaton(t, my, bt, addUser)
	waitPrimary(t, b)
	db := cluster.OpenMySQL(t, dsn(b))
	for _, hint := range []string{"/* baton:primary */ ", "/* baton:replica */ "} {
		var user string
		if err := db.QueryRowContext(ctx, hint+"SELECT CURRENT_USER()").Scan(&user); err != nil {
			t.Fatalf("%swith a client certificate: %v", hint, err)
		}
		if !strings.HasPrefix(user, "certapp@") {
			t.Fatalf("CURRENT_USER() %q", user)
		}
	}

	bt.CertFile, bt.KeyFile = "", ""
	b2 := startMyTLSBaton(t, my, bt, addUser)
	waitPrimary(t, b2)
	db2 := cluster.OpenMySQL(t, dsn(b2))
	var user string
	err := db2.QueryRowContext(ctx, "/* baton:primary */ SELECT CURRENT_USER()").Scan(&user)
	if err == nil || !strings.Contains(err.Error(), "1045") && !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("without a client certificate: %v", err)
	}
}
