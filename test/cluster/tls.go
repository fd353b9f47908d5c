package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles are the PEM files of a test CA, a server certificate it signed and a client
// certificate it signed. Every cluster started with TLS (the default) has its own, in
// <BaseDir>/tls; GenerateTLS makes more (a second CA for tests that must fail verification).
type TLSFiles struct {
	Dir    string
	CAFile string // ca.crt: the CA's certificate
	// ServerCert / ServerKey: server.crt, server.key, valid for every name in ServerNames.
	ServerCert, ServerKey string
	ServerNames           []string
	// ClientCert / ClientKey: client.crt, client.key, for the subject CN ClientCN.
	ClientCert, ClientKey string
	ClientCN              string
}

// tlsValidity is how long the generated certificates are valid (from an hour ago).
const tlsValidity = 30 * 24 * time.Hour

// GenerateTLS creates dir (0700) and writes a new CA, a server certificate for names (IP
// addresses and DNS names; none: 127.0.0.1 and localhost) and a client certificate with
// subject CN clientCN into it. Keys are ECDSA P-256, written 0600.
func GenerateTLS(dir, clientCN string, names ...string) (*TLSFiles, error) {
	if len(names) == 0 {
		names = []string{"127.0.0.1", "localhost"}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	f := &TLSFiles{
		Dir: dir, CAFile: filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
		ServerNames: names, ClientCN: clientCN,
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "baton test CA " + filepath.Base(dir)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(tlsValidity),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := writePEM(f.CAFile, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	leaf := func(tmpl *x509.Certificate, certFile, keyFile string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial(), now.Add(-time.Hour), now.Add(tlsValidity)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		return writePEM(keyFile, "PRIVATE KEY", kb, 0o600)
	}
	srv := &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, n)
		}
	}
	if err := leaf(srv, f.ServerCert, f.ServerKey); err != nil {
		return nil, err
	}
	cli := &x509.Certificate{Subject: pkix.Name{CommonName: clientCN}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if err := leaf(cli, f.ClientCert, f.ClientKey); err != nil {
		return nil, err
	}
	return f, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic("BUG: crypto/rand: " + err.Error())
	}
	return n
}

func writePEM(path, typ string, der []byte, perm os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), perm); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// tlsFor reports whether node name starts with TLS: on unless noTLS or name is in noTLSNodes.
func tlsFor(name string, noTLS bool, noTLSNodes []string) bool {
	if noTLS {
		return false
	}
	for _, n := range noTLSNodes {
		if n == name {
			return false
		}
	}
	return true
}

// makeTLS writes the cluster's certificates to <BaseDir>/tls, owned by the server user: the
// server certificate names 127.0.0.1, localhost and, in a NetLab, every lane address.
func (c *PGCluster) makeTLS() error {
	names := []string{"127.0.0.1", "localhost"}
	if lab := c.Opts.Lab; lab != nil {
		for _, n := range c.Nodes() {
			for lane := range lab.Lanes {
				if host := n.NS.IP(lane); !containsStr(names, host) {
					names = append(names, host)
				}
			}
		}
	}
	t, err := GenerateTLS(filepath.Join(c.BaseDir, "tls"), c.Opts.AppUser, names...)
	if err != nil {
		return err
	}
	for _, p := range []string{t.Dir, t.CAFile, t.ServerCert, t.ServerKey, t.ClientCert, t.ClientKey} {
		if err := c.env.own(p); err != nil {
			return err
		}
	}
	c.TLS = t
	return nil
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
