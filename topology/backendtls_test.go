package topology_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// tlsYAML is a cluster with two nodes; %s is replaced by backend_tls settings.
const tlsYAML = `clusters:
  - name: pg
    engine: postgres
    listen: 127.0.0.1:6432
%s    nodes:
      - {name: a, address: 127.0.0.1:5432}
      - name: b
        address: db-b.internal:5433
%s    users:
      - {name: app, password: x}
`

func tlsConfig(cluster, nodeB string) []byte {
	return []byte(strings.Replace(strings.Replace(tlsYAML, "%s", cluster, 1), "%s", nodeB, 1))
}

func TestBackendTLSResolve(t *testing.T) {
	f, err := cluster.GenerateTLS(t.TempDir(), "app")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("default prefer", func(t *testing.T) {
		cfg, err := topology.Parse("x.yaml", tlsConfig("", ""))
		if err != nil {
			t.Fatal(err)
		}
		a := cfg.Clusters[0].Nodes[0].TLS()
		if a.Mode != topology.TLSPrefer || !a.Enabled() || a.Required() || !a.Config.InsecureSkipVerify {
			t.Fatalf("default: %+v", a)
		}
	})
	t.Run("cluster verify-full, node override", func(t *testing.T) {
		cl := "    backend_tls: {mode: verify-full, ca_file: " + f.CAFile + ", cert_file: " + f.ClientCert + ", key_file: " + f.ClientKey + "}\n"
		nb := "        backend_tls: {server_name: db-b.example, mode: verify-ca}\n"
		cfg, err := topology.Parse("x.yaml", tlsConfig(cl, nb))
		if err != nil {
			t.Fatal(err)
		}
		a, b := cfg.Clusters[0].Nodes[0].TLS(), cfg.Clusters[0].Nodes[1].TLS()
		if a.Mode != topology.TLSVerifyFull || a.Config.ServerName != "127.0.0.1" || a.Config.InsecureSkipVerify || a.Config.RootCAs == nil || len(a.Config.Certificates) != 1 {
			t.Fatalf("node a: %+v", a.Config)
		}
		if b.Mode != topology.TLSVerifyCA || b.Config.ServerName != "db-b.example" || !b.Config.InsecureSkipVerify || b.Config.VerifyConnection == nil || len(b.Config.Certificates) != 1 {
			t.Fatalf("node b: %+v", b.Config)
		}
		if a.Same(b) || !a.Same(a) {
			t.Fatal("Same")
		}
		// The same file names with other contents are not the same settings (a reload after
		// the certificates were replaced makes new pools).
		cfg2, err := topology.Parse("x.yaml", tlsConfig(cl, nb))
		if err != nil {
			t.Fatal(err)
		}
		if !cfg2.Clusters[0].Nodes[0].TLS().Same(a) {
			t.Fatal("reloaded identical settings differ")
		}
		g, err := cluster.GenerateTLS(t.TempDir(), "app")
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := os.ReadFile(g.CAFile)
		if err := os.WriteFile(f.CAFile, ca, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg3, err := topology.Parse("x.yaml", tlsConfig(cl, nb))
		if err != nil {
			t.Fatal(err)
		}
		if cfg3.Clusters[0].Nodes[0].TLS().Same(a) {
			t.Fatal("a changed ca_file did not change the settings")
		}
	})
	t.Run("disable", func(t *testing.T) {
		cfg, err := topology.Parse("x.yaml", tlsConfig("    backend_tls: {mode: disable}\n", "        backend_tls: {mode: require}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if a := cfg.Clusters[0].Nodes[0].TLS(); a.Enabled() || a.Config != nil {
			t.Fatalf("disable: %+v", a)
		}
		if b := cfg.Clusters[0].Nodes[1].TLS(); !b.Required() || b.Config.ServerName != "db-b.internal" {
			t.Fatalf("node require: %+v", b)
		}
	})
}

func TestBackendTLSErrors(t *testing.T) {
	f, err := cluster.GenerateTLS(t.TempDir(), "app")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	encKey := filepath.Join(dir, "enc.key")
	os.WriteFile(encKey, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)
	for _, tc := range []struct {
		name, cluster, node string
		want                []string // in the error text
	}{
		{"bad mode", "    backend_tls: {mode: VERIFY_IDENTITY}\n", "", []string{"x.yaml:5", "clusters[0].backend_tls.mode", "verify-full", `"VERIFY_IDENTITY"`}},
		{"bad node mode", "", "        backend_tls: {mode: allow}\n", []string{"clusters[0].nodes[1].backend_tls.mode", "libpq's allow"}},
		{"missing ca", "    backend_tls: {mode: verify-full, ca_file: /nonexistent/ca.crt}\n", "", []string{"clusters[0].backend_tls.ca_file", "/nonexistent/ca.crt", "no such file"}},
		{"not a certificate", "    backend_tls: {mode: verify-ca, ca_file: " + notPEM + "}\n", "", []string{"backend_tls.ca_file", "holds no PEM certificate"}},
		{"cert without key", "    backend_tls: {cert_file: " + f.ClientCert + "}\n", "", []string{"clusters[0].backend_tls", "set both cert_file and key_file"}},
		{"node key without cert", "", "        backend_tls: {key_file: " + f.ClientKey + "}\n", []string{"clusters[0].nodes[1].backend_tls", "set both"}},
		{"key does not match", "    backend_tls: {cert_file: " + f.ClientCert + ", key_file: " + f.ServerKey + "}\n", "", []string{"backend_tls.cert_file", "private key does not match"}},
		{"encrypted key", "    backend_tls: {cert_file: " + f.ClientCert + ", key_file: " + encKey + "}\n", "", []string{"backend_tls.key_file", "is encrypted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := topology.Parse("x.yaml", tlsConfig(tc.cluster, tc.node))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A node made in code connects without TLS until ResolveBackendTLS runs.
func TestBackendTLSInCode(t *testing.T) {
	n := &topology.Node{Name: "n", Address: "127.0.0.1:5432"}
	if n.TLS().Enabled() {
		t.Fatal("an unresolved node uses TLS")
	}
	cl := &topology.Cluster{Name: "c", Nodes: []*topology.Node{n}, BackendTLS: topology.BackendTLS{Mode: topology.TLSRequire}}
	if err := cl.ResolveBackendTLS(); err != nil {
		t.Fatal(err)
	}
	if !n.TLS().Required() || n.TLS().Node != "n" {
		t.Fatalf("resolved: %+v", n.TLS())
	}
	cl.BackendTLS.Mode = "sometimes"
	if err := cl.ResolveBackendTLS(); err == nil || !strings.Contains(err.Error(), "cluster c: backend_tls.mode") {
		t.Fatalf("error %v", err)
	}
}
