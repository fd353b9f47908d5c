package mywire

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is a MySQL server built from this package on a loopback socket: greeting, TLS,
// ServerAuth, then a command loop that answers COM_PING, COM_QUIT and a few COM_QUERYs with
// result sets encoded by hand.
type fakeServer struct {
	t       *testing.T
	ln      net.Listener
	creds   map[string]*Credential
	plugin  string // advertised in the greeting
	tlsConf *tls.Config
	rsaKey  *rsa.PrivateKey
	cache   *SHA2Cache
	connID  atomic.Uint32
	wg      sync.WaitGroup

	authErrs chan error // one per connection: nil or why it did not reach the command phase
}

// newFakeServer starts a server; configure, if given, runs before it accepts connections.
func newFakeServer(t *testing.T, plugin string, configure func(*fakeServer), creds ...*Credential) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, plugin: plugin, creds: map[string]*Credential{}, cache: NewSHA2Cache(),
		authErrs: make(chan error, 100)}
	for _, c := range creds {
		s.creds[c.User] = c
	}
	if configure != nil {
		configure(s)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait() // every connection goroutine has exited
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

// authResult waits for the outcome of the next connection's authentication.
func (s *fakeServer) authResult() error {
	select {
	case err := <-s.authErrs:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("no connection reached authentication")
	}
}

const fakeCaps = ClientLongPassword | ClientFoundRows | ClientLongFlag | ClientConnectWithDB |
	ClientProtocol41 | ClientTransactions | ClientSecureConnection | ClientMultiStatements |
	ClientMultiResults | ClientPSMultiResults | ClientPluginAuth | ClientConnectAttrs |
	ClientPluginAuthLenencClientData | ClientSessionTrack | ClientDeprecateEOF

func (s *fakeServer) serve(c net.Conn) {
	authErr := errors.New("connection ended before authentication")
	reported := false
	report := func() {
		if !reported {
			reported = true
			s.authErrs <- authErr
		}
	}
	defer report()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	h := &Handshake{
		ConnID: s.connID.Add(1), ServerVersion: "8.0.36-mywire-fake", Caps: fakeCaps, Charset: 45,
		Status: StatusAutocommit, AuthPlugin: s.plugin, Salt: NewSalt(),
	}
	if s.tlsConf != nil {
		h.Caps |= ClientSSL
	}
	out, _ := AppendPacket(nil, 0, h.Append(nil))
	if _, err := c.Write(out); err != nil {
		return
	}
	p, seq, err := ReadPacket(c, MaxHandshakePayload)
	if err != nil {
		return
	}
	var conn net.Conn = c
	isTLS := false
	if IsSSLRequest(p) && s.tlsConf != nil {
		tc := tls.Server(c, s.tlsConf)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn, isTLS = tc, true
		if p, seq, err = ReadPacket(conn, MaxHandshakePayload); err != nil {
			return
		}
	}
	resp, err := DecodeHandshakeResponse(p)
	if err != nil {
		s.t.Errorf("fake server: %v", err)
		return
	}
	r := NewPacketReader(bufio.NewReader(conn), MaxHandshakePayload)
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	auth := &ServerAuth{
		Handshake: h, Resp: resp, Cred: s.creds[resp.User], TLS: isTLS, RSAKey: s.rsaKey,
		ClientHost: host, Cache: s.cache,
	}
	_, err = auth.Run(r, conn, seq+1)
	authErr = err
	report()
	if err != nil {
		return
	}
	caps := resp.Caps & h.Caps
	r.SetMaxPayload(0)
	for {
		p, _, err := r.Next()
		if err != nil || len(p) == 0 {
			return
		}
		var out []byte
		switch p[0] {
		case ComQuit:
			return
		case ComPing, ComInitDB:
			out = AppendOK(nil, 1, OK{Status: StatusAutocommit}, caps)
		case ComQuery:
			out = fakeQuery(string(p[1:]), caps)
		default:
			out = AppendERR(nil, 1, ERR{Code: ErUnknownCom, State: "08S01", Message: "Unknown command"}, caps)
		}
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// fakeQuery answers the queries the tests send with hand-encoded responses.
func fakeQuery(q string, caps uint32) []byte {
	switch q {
	case "SELECT name, n FROM pets":
		seq := byte(1)
		var out []byte
		add := func(p []byte) { out, seq = AppendPacket(out, seq, p) }
		add(pCount(2))
		add(pColumn("name", 253))
		add(pColumn("n", 8))
		if caps&ClientDeprecateEOF == 0 {
			add(pEOF(StatusAutocommit))
		}
		add(pTextRow("cat", "3"))
		add(pTextRow("dog", "NULL"))
		if caps&ClientDeprecateEOF != 0 {
			out = AppendOKAsEOF(out, seq, OK{Status: StatusAutocommit}, caps)
		} else {
			out = AppendEOF(out, seq, 0, StatusAutocommit)
		}
		return out
	case "UPDATE pets SET n = n + 1":
		return AppendOK(nil, 1, OK{AffectedRows: 2, Status: StatusAutocommit, Info: "Rows matched: 2  Changed: 2  Warnings: 0"}, caps)
	}
	return AppendERR(nil, 1, ERR{Code: 1064, State: "42000", Message: "You have an error in your SQL syntax"}, caps)
}

// selfSignedTLS returns a server config and a client config trusting it, for 127.0.0.1.
func selfSignedTLS(t testing.TB) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mywire-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

var (
	testTLSOnce               sync.Once
	testTLSServer, testTLSCli *tls.Config
)

// testTLS returns one self-signed server config and a client config trusting it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	testTLSOnce.Do(func() { testTLSServer, testTLSCli = selfSignedTLS(t) })
	return testTLSServer, testTLSCli.Clone()
}

var (
	testRSAOnce sync.Once
	testRSAKey  *rsa.PrivateKey
)

func rsaKey(t testing.TB) *rsa.PrivateKey {
	testRSAOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		testRSAKey = k
	})
	return testRSAKey
}
