package pgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// selfSigned writes a throwaway certificate for 127.0.0.1 and returns the file paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "baton-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSTermination(t *testing.T) {
	cert, key := selfSigned(t)
	b := batontest.StartPGBatonForTest(t, pg, func(c *topology.Cluster) {
		c.TLS = topology.TLS{CertFile: cert, KeyFile: key, Require: true}
	})
	base := strings.Replace(b.URL(pg), "sslmode=disable", "", 1)
	for _, mode := range []string{"sslmode=require", "sslmode=require&sslnegotiation=direct"} {
		t.Run(mode, func(t *testing.T) {
			ctx := ctxT(t)
			c, err := pgx.Connect(ctx, base+mode)
			if err != nil {
				t.Fatalf("TLS connect: %v", err)
			}
			defer c.Close(ctx)
			if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
				t.Fatalf("connection is %T, not TLS", c.PgConn().Conn())
			}
			port, replica := where(t, c, ctx, "")
			if !replica || port == pg.Primary.Port {
				t.Fatalf("read over TLS ran on %d (replica=%v)", port, replica)
			}
		})
	}
	t.Run("plaintext refused", func(t *testing.T) {
		_, err := pgx.Connect(ctxT(t), base+"sslmode=disable")
		var pe *pgconn.PgError
		if !asPgError(err, &pe) || pe.Code != "28000" {
			t.Fatalf("plaintext login with tls.require: got %v, want 28000", err)
		}
	})
}
