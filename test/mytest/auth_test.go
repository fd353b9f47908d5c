package mytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// loginErr opens a new connection through b with dsn and returns the login's error.
func loginErr(t *testing.T, dsn string) error {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.Conn(ctxT(t))
	if err != nil {
		return err
	}
	defer c.Close()
	if p := where(t, c, ctxT(t), ""); !isReplicaPort(p) {
		t.Fatalf("a read after login ran on %d; want a replica", p)
	}
	return nil
}

func isReplicaPort(p int) bool {
	for _, r := range my.Replicas {
		if r.Port == p {
			return true
		}
	}
	return false
}

func withPassword(dsn, pw string) string {
	return strings.Replace(dsn, my.Opts.AppUser+":"+my.Opts.AppPassword+"@", my.Opts.AppUser+":"+pw+"@", 1)
}

func want1045(t *testing.T, what string, err error) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("%s: %v; want error 1045", what, err)
	}
}

// sha2Login sends a caching_sha2_password fast-path response by hand and returns the server's
// first answer.
func sha2Login(t *testing.T, addr, password string) (*wireConn, []byte) {
	t.Helper()
	w := wireDial(t, addr)
	w.mustWrite(1, handshakeResponse(my.Opts.AppUser, my.Opts.AppDB, "caching_sha2_password", sha2Scramble(password, w.salt)))
	p, seq := w.mustRead("caching_sha2_password login")
	if seq != 2 {
		t.Fatalf("the answer to the login has sequence id %d; want 2", seq)
	}
	return w, p
}

func TestCachingSHA2Password(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(c *topology.Cluster) {
		c.Users[0].Auth = "caching_sha2_password"
	})
	addr := b.Inst.Clusters()[0].Addr().String()
	// go-sql-driver has no allowPublicKeyRetrieval option: without serverPubKey and without TLS
	// it always asks the server for its RSA key during full authentication.
	dsn := b.DSN(my, "")
	// Nothing cached yet: the fast path is refused and full authentication asked for.
	w, p := sha2Login(t, addr, my.Opts.AppPassword)
	if string(p) != "\x01\x04" {
		t.Fatalf("a fast-path login before any full authentication answered %q; want perform-full-authentication (01 04)", p)
	}
	w.c.Close()
	m := b.Inst.Clusters()[0].My.Metrics()
	fails := m.AuthFailures()
	want1045(t, "a wrong password (full authentication, nothing cached)", loginErr(t, withPassword(dsn, "wrong")))
	t.Run("full-auth", func(t *testing.T) {
		// go-sql-driver has no TLS here: it fetches baton's RSA key and encrypts the password.
		if err := loginErr(t, dsn); err != nil {
			t.Fatalf("first login (full authentication over RSA): %v", err)
		}
	})
	t.Run("fast-path", func(t *testing.T) {
		w, p := sha2Login(t, addr, my.Opts.AppPassword)
		if string(p) != "\x01\x03" {
			t.Fatalf("a second login answered %q; want fast-auth-success (01 03)", p)
		}
		if p, seq := w.mustRead("after fast-auth-success"); len(p) == 0 || p[0] != 0 || seq != 3 {
			t.Fatalf("after fast-auth-success: %q (seq %d); want OK with sequence id 3", p, seq)
		}
		wantReplica(t, "a read after the fast path", w.portOf())
		if err := loginErr(t, dsn); err != nil {
			t.Fatalf("second go-sql-driver login: %v", err)
		}
	})
	t.Run("wrong-password-cached", func(t *testing.T) {
		want1045(t, "a wrong password (fast path)", loginErr(t, withPassword(dsn, "wrong")))
		_, p := sha2Login(t, addr, "wrong")
		if e := decodeErr(p); e == nil || e.Code != 1045 || e.State != "28000" || !strings.Contains(e.Msg, "Access denied for user 'app'") {
			t.Fatalf("a wrong fast-path scramble answered %q; want ERR 1045 (28000) Access denied", p)
		}
		if got := m.AuthFailures() - fails; got < 3 {
			t.Fatalf("AuthFailures grew by %d; want 3", got)
		}
		// The right password still works afterwards.
		if err := loginErr(t, dsn); err != nil {
			t.Fatal(err)
		}
	})
}

// selfSigned writes a self-signed certificate for 127.0.0.1 / localhost and returns the file
// names and a pool holding it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "baton test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	const verified = "baton-mytest-verify"
	if err := mysql.RegisterTLSConfig(verified, &tls.Config{RootCAs: pool, ServerName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mysql.DeregisterTLSConfig(verified) })
	t.Run("optional", func(t *testing.T) {
		b := batontest.StartMyBatonForTest(t, my, func(c *topology.Cluster) {
			c.TLS = topology.TLS{CertFile: certFile, KeyFile: keyFile}
		})
		// tls=skip-verify fails unless the server offers TLS, so success proves TLS is used.
		for _, params := range []string{"tls=skip-verify", "tls=" + verified} {
			ctx := ctxT(t)
			c := conn2(t, b, params)
			wantReplica(t, "a read over TLS ("+params+")", where(t, c, ctx, ""))
			tbl := unique("tls")
			mustExec(t, c, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, who INT)")
			mustExec(t, c, "INSERT INTO "+tbl+" VALUES (?, @@port)", 1)
			var who int
			if err := c.QueryRowContext(ctx, "/* baton:primary */ SELECT who FROM "+tbl).Scan(&who); err != nil {
				t.Fatal(err)
			}
			wantPrimary(t, "a write over TLS", who)
		}
		if err := loginErr(t, b.DSN(my, "")); err != nil {
			t.Fatalf("a plain client without require: %v", err)
		}
	})
	t.Run("require", func(t *testing.T) {
		b := batontest.StartMyBatonForTest(t, my, func(c *topology.Cluster) {
			c.TLS = topology.TLS{CertFile: certFile, KeyFile: keyFile, Require: true}
			c.Users[0].Auth = "caching_sha2_password" // full authentication takes the password over TLS
		})
		if err := loginErr(t, b.DSN(my, "tls=skip-verify")); err != nil {
			t.Fatalf("a TLS client (caching_sha2_password full auth over TLS): %v", err)
		}
		if err := loginErr(t, b.DSN(my, "tls=skip-verify")); err != nil {
			t.Fatalf("a second TLS client (fast path): %v", err)
		}
		err := loginErr(t, b.DSN(my, "tls=false"))
		var me *mysql.MySQLError
		if !errors.As(err, &me) {
			t.Fatalf("a plain client with require: %v; want an error from baton", err)
		}
		t.Logf("plain client refused: %v", me)
		want1045(t, "a wrong password over TLS", loginErr(t, withPassword(b.DSN(my, "tls=skip-verify"), "wrong")))
	})
}

// conn2 pins one session through baton b.
func conn2(t *testing.T, b *batontest.Baton, params string) *sql.Conn {
	t.Helper()
	db, err := sql.Open("mysql", b.DSN(my, params))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
