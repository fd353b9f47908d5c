package topology

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// TLSMode is how baton secures its connections to a cluster's servers. The names are libpq's
// sslmode values; for MySQL/MariaDB they mean the MySQL client's --ssl-mode of the same
// strength (DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY).
type TLSMode string

// Backend TLS modes.
const (
	// TLSDisable: plaintext, never TLS.
	TLSDisable TLSMode = "disable"
	// TLSPrefer: TLS when the server offers it, plaintext otherwise; the server is not verified.
	TLSPrefer TLSMode = "prefer"
	// TLSRequire: TLS or no connection; the server's certificate is not verified.
	TLSRequire TLSMode = "require"
	// TLSVerifyCA: TLS, and the server's certificate must chain to ca_file (else the system's
	// roots); its name is not checked.
	TLSVerifyCA TLSMode = "verify-ca"
	// TLSVerifyFull: verify-ca, and the certificate must name the server (server_name, else the
	// host of the node's address).
	TLSVerifyFull TLSMode = "verify-full"
)

// DefaultBackendTLSMode is the mode of a cluster whose backend_tls names none. prefer, like
// libpq's and the MySQL client's default: a configuration written for plaintext servers keeps
// working, and servers that offer TLS get it — without verification, so it only stops passive
// eavesdropping; production configurations should say verify-full.
const DefaultBackendTLSMode = TLSPrefer

// BackendTLS configures TLS from baton to the database servers: per cluster (backend_tls) and,
// field by field, per node (nodes[].backend_tls). Files are read when the configuration is
// loaded, so a missing or malformed file fails the start or the reload, not a connection.
type BackendTLS struct {
	// Mode: disable, prefer (default), require, verify-ca, verify-full.
	Mode TLSMode `yaml:"mode"`
	// CAFile: PEM certificates the server's certificate must chain to (verify-ca, verify-full).
	// Empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile / KeyFile: a PEM client certificate and its unencrypted key, presented to servers
	// that ask for one (PostgreSQL `cert` authentication, MariaDB REQUIRE X509 / SUBJECT).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName: the name verify-full expects in the server's certificate, also sent as SNI.
	// Default: the host of the node's address.
	ServerName string `yaml:"server_name"`
}

// NodeTLS is the backend TLS of one node: the cluster's backend_tls with the node's own fields
// over it, its files loaded. It is immutable and safe for concurrent use.
type NodeTLS struct {
	Node    string  // the node's name (for error messages)
	Address string  // the node's address
	Mode    TLSMode // never empty
	// Config is the client TLS configuration (nil with TLSDisable). Do not modify it.
	Config *tls.Config
	// ident identifies the settings and the files' contents: pools and probers made for one
	// NodeTLS serve another only when the two are Same.
	ident string
}

// Enabled reports whether connections try TLS at all.
func (t *NodeTLS) Enabled() bool { return t != nil && t.Mode != TLSDisable && t.Config != nil }

// Required reports whether a server without TLS is refused.
func (t *NodeTLS) Required() bool { return t.Enabled() && t.Mode != TLSPrefer }

// Same reports whether t and o configure connections identically (same settings, same file
// contents); nil is the same as disable.
func (t *NodeTLS) Same(o *NodeTLS) bool { return t.identity() == o.identity() }

// Ident is a string that differs between NodeTLS values that are not Same.
func (t *NodeTLS) Ident() string { return t.identity() }

func (t *NodeTLS) identity() string {
	if !t.Enabled() {
		return string(TLSDisable)
	}
	return t.ident
}

// String describes the settings without secrets, e.g. "verify-full (server_name db1)".
func (t *NodeTLS) String() string {
	if !t.Enabled() {
		return string(TLSDisable)
	}
	if t.Mode == TLSVerifyFull {
		return fmt.Sprintf("%s (server_name %s)", t.Mode, t.Config.ServerName)
	}
	return string(t.Mode)
}

// ErrNoServerTLS is wrapped by the error of a connection whose server does not offer TLS
// while the node's mode requires it.
var ErrNoServerTLS = errors.New("the server does not offer TLS")

// NoTLSError is the error of a connection to t's node whose server does not offer TLS although
// t.Mode requires it.
func (t *NodeTLS) NoTLSError() error {
	return fmt.Errorf("node %s (%s): %w, and backend_tls.mode is %s (enable TLS on the server, or set mode prefer or disable to allow plaintext)",
		t.Node, t.Address, ErrNoServerTLS, t.Mode)
}

// HandshakeError wraps err, the failure of the TLS handshake with t's node, with the node and
// the mode (a certificate error then reads e.g. "x509: certificate is valid for …, not …").
func (t *NodeTLS) HandshakeError(err error) error {
	return fmt.Errorf("node %s (%s): TLS handshake (backend_tls.mode %s): %w", t.Node, t.Address, t, err)
}

// disabledTLS is the NodeTLS of a node no configuration resolved.
var disabledTLS = &NodeTLS{Mode: TLSDisable}

// TLS returns the node's backend TLS. A Node made in code rather than loaded has none until
// its cluster's ResolveBackendTLS runs; it connects without TLS.
func (n *Node) TLS() *NodeTLS {
	if n.tls == nil {
		return disabledTLS
	}
	return n.tls
}

// ResolveBackendTLS builds every node's NodeTLS from the cluster's and the nodes' backend_tls,
// reading the files. Load does it; call it after changing BackendTLS or Nodes in code.
func (c *Cluster) ResolveBackendTLS() error {
	if err := c.resolveBackendTLS("backend_tls", func(i int) string { return fmt.Sprintf("nodes[%d].backend_tls", i) }); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return fmt.Errorf("cluster %s: %s", c.Name, fe.Error())
		}
		return err
	}
	return nil
}

// validateBackendTLS is ResolveBackendTLS for Load: errors name the YAML path under p.
func (c *Cluster) validateBackendTLS(p string) error {
	return c.resolveBackendTLS(p+".backend_tls", func(i int) string { return fmt.Sprintf("%s.nodes[%d].backend_tls", p, i) })
}

// tlsField is one effective backend_tls value and the YAML path it came from.
type tlsField struct{ val, path string }

func (c *Cluster) resolveBackendTLS(clusterPath string, nodePath func(int) string) error {
	if err := c.BackendTLS.checkMode(clusterPath); err != nil {
		return err
	}
	files := &tlsFiles{certs: map[string]*x509.CertPool{}, pairs: map[string]*tls.Certificate{}, sums: map[string]string{}}
	resolved := make([]*NodeTLS, len(c.Nodes))
	for i, n := range c.Nodes {
		if n == nil {
			continue
		}
		at := func(v string) tlsField { return tlsField{v, clusterPath} }
		mode, ca, cert, key, name := at(string(c.BackendTLS.Mode)), at(c.BackendTLS.CAFile), at(c.BackendTLS.CertFile), at(c.BackendTLS.KeyFile), at(c.BackendTLS.ServerName)
		if o := n.BackendTLS; o != nil {
			np := nodePath(i)
			if err := o.checkMode(np); err != nil {
				return err
			}
			for _, f := range []struct {
				dst *tlsField
				v   string
			}{{&mode, string(o.Mode)}, {&ca, o.CAFile}, {&cert, o.CertFile}, {&key, o.KeyFile}, {&name, o.ServerName}} {
				if f.v != "" {
					*f.dst = tlsField{f.v, np}
				}
			}
		}
		if mode.val == "" {
			mode.val = string(DefaultBackendTLSMode)
		}
		t, err := files.build(n, TLSMode(mode.val), ca, cert, key, name)
		if err != nil {
			return err
		}
		resolved[i] = t
	}
	for i, n := range c.Nodes {
		if n != nil {
			n.tls = resolved[i]
		}
	}
	return nil
}

// checkMode validates the mode as written (empty: inherited or the default).
func (b *BackendTLS) checkMode(p string) error {
	switch b.Mode {
	case "", TLSDisable, TLSPrefer, TLSRequire, TLSVerifyCA, TLSVerifyFull:
		return nil
	}
	hint := ""
	switch strings.ToUpper(strings.ReplaceAll(string(b.Mode), "-", "_")) {
	case "DISABLED", "FALSE", "OFF":
		hint = " (MySQL's DISABLED is disable)"
	case "PREFERRED", "PREFERED", "TRUE", "ON":
		hint = " (MySQL's PREFERRED is prefer)"
	case "REQUIRED", "SKIP_VERIFY":
		hint = " (MySQL's REQUIRED is require)"
	case "VERIFY_IDENTITY":
		hint = " (MySQL's VERIFY_IDENTITY is verify-full)"
	case "ALLOW":
		hint = " (libpq's allow is not supported: use prefer)"
	}
	return ferr(p+".mode", "must be disable, prefer, require, verify-ca or verify-full, not %q%s", b.Mode, hint)
}

// tlsFiles loads each file once per resolution.
type tlsFiles struct {
	certs map[string]*x509.CertPool
	pairs map[string]*tls.Certificate
	sums  map[string]string // path → sha256 of the contents
}

func (f *tlsFiles) read(path, field string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, ferr(field, "cannot read %s: %v", path, err)
	}
	sum := sha256.Sum256(b)
	f.sums[path] = hex.EncodeToString(sum[:8])
	return b, nil
}

// pool loads ca_file ("" : the system's roots).
func (f *tlsFiles) pool(ca tlsField) (*x509.CertPool, error) {
	if p, ok := f.certs[ca.val]; ok {
		return p, nil
	}
	var p *x509.CertPool
	if ca.val == "" {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, ferr(ca.path+".ca_file", "no ca_file and the system's root certificates cannot be loaded: %v", err)
		}
		p = sys
	} else {
		b, err := f.read(ca.val, ca.path+".ca_file")
		if err != nil {
			return nil, err
		}
		p = x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			return nil, ferr(ca.path+".ca_file", "%s holds no PEM certificate", ca.val)
		}
	}
	f.certs[ca.val] = p
	return p, nil
}

// pair loads a client certificate and its key.
func (f *tlsFiles) pair(cert, key tlsField) (*tls.Certificate, error) {
	if cert.val == "" && key.val == "" {
		return nil, nil
	}
	if cert.val == "" || key.val == "" {
		p := cert.path
		if cert.val == "" {
			p = key.path
		}
		return nil, ferr(p, "set both cert_file and key_file, or neither")
	}
	k := cert.val + "\x00" + key.val
	if c, ok := f.pairs[k]; ok {
		return c, nil
	}
	cb, err := f.read(cert.val, cert.path+".cert_file")
	if err != nil {
		return nil, err
	}
	kb, err := f.read(key.val, key.path+".key_file")
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(kb); blk != nil && (blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] != "") {
		return nil, ferr(key.path+".key_file", "%s is encrypted: baton needs an unencrypted key (protect it by file permissions)", key.val)
	}
	c, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		// The error of X509KeyPair never quotes key material.
		return nil, ferr(cert.path+".cert_file", "%s and %s: %v", cert.val, key.val, err)
	}
	if c.Leaf != nil && time.Now().After(c.Leaf.NotAfter) {
		return nil, ferr(cert.path+".cert_file", "%s expired on %s", cert.val, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	f.pairs[k] = &c
	return &c, nil
}

// build makes n's NodeTLS.
func (f *tlsFiles) build(n *Node, mode TLSMode, ca, cert, key, name tlsField) (*NodeTLS, error) {
	t := &NodeTLS{Node: n.Name, Address: n.Address, Mode: mode}
	if mode == TLSDisable {
		return t, nil
	}
	serverName := name.val
	if serverName == "" {
		host, _, err := net.SplitHostPort(n.Address)
		if err != nil {
			return nil, ferr(name.path, "server_name: node address %q has no host: %v", n.Address, err)
		}
		serverName = host
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName, // SNI (not sent for an IP address) and verify-full's name
		// Resumed sessions skip the full handshake on reconnects (pools, probes).
		ClientSessionCache: tls.NewLRUClientSessionCache(32),
	}
	pair, err := f.pair(cert, key)
	if err != nil {
		return nil, err
	}
	if pair != nil {
		cfg.Certificates = []tls.Certificate{*pair}
	}
	switch mode {
	case TLSPrefer, TLSRequire:
		cfg.InsecureSkipVerify = true // the modes that do not verify, as libpq's
	case TLSVerifyCA:
		roots, err := f.pool(ca)
		if err != nil {
			return nil, err
		}
		// Chain only, no name: crypto/tls verifies both or neither.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	case TLSVerifyFull:
		roots, err := f.pool(ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = roots
	}
	t.Config = cfg
	t.ident = strings.Join([]string{string(mode), "ca=" + ca.val, f.sums[ca.val], "cert=" + cert.val, f.sums[cert.val],
		"key=" + key.val, f.sums[key.val], "name=" + serverName}, "\x00")
	return t, nil
}

// verifyChain checks that the server's certificate chains to roots, for any name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// NodeTLS returns the backend TLS of the node named name at address: the configured node's
// when it is one of c's nodes, else (a node c does not list, such as one added by a later
// reload) the cluster's own backend_tls for that address.
func (c *Cluster) NodeTLS(name, address string) (*NodeTLS, error) {
	for _, n := range c.Nodes {
		if n != nil && n.Name == name && n.Address == address && n.tls != nil {
			return n.tls, nil
		}
	}
	tmp := &Cluster{Name: c.Name, BackendTLS: c.BackendTLS, Nodes: []*Node{{Name: name, Address: address}}}
	if err := tmp.ResolveBackendTLS(); err != nil {
		return nil, err
	}
	return tmp.Nodes[0].tls, nil
}

// NodeTLSAt is NodeTLS for the node at address (the first configured node with that address,
// else the cluster's own backend_tls for it), for callers that know only the address.
func (c *Cluster) NodeTLSAt(address string) (*NodeTLS, error) {
	for _, n := range c.Nodes {
		if n != nil && n.Address == address && n.tls != nil {
			return n.tls, nil
		}
	}
	return c.NodeTLS(address, address)
}
