package pgwire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// authTestServer is a tiny PostgreSQL front end on loopback: it reads the
// StartupMessage (answering an SSLRequest when tlsConfig is set), calls
// Authenticate, and on success answers simple queries with one fixed row.
type authTestServer struct {
	addr    string
	results chan error // Authenticate's result, one per connection
}

type authTestServerConfig struct {
	creds     map[string]*Credential // not modified after start
	tlsConfig *tls.Config
	deadline  time.Duration // per connection; 10 s when zero
}

func startAuthTestServer(t *testing.T, cfg authTestServerConfig) *authTestServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.deadline == 0 {
		cfg.deadline = 10 * time.Second
	}
	s := &authTestServer{addr: ln.Addr().String(), results: make(chan error, 64)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(conn, cfg) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("server goroutines did not return")
		}
	})
	return s
}

func (s *authTestServer) serve(conn net.Conn, cfg authTestServerConfig) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(cfg.deadline))
	be := pgproto3.NewBackend(conn, conn)
	msg, err := be.ReceiveStartupMessage()
	if err != nil {
		s.results <- fmt.Errorf("test server: startup: %w", err)
		return
	}
	var tlsState *tls.ConnectionState
	if _, ok := msg.(*pgproto3.SSLRequest); ok {
		if cfg.tlsConfig == nil {
			conn.Write([]byte("N"))
		} else {
			conn.Write([]byte("S"))
			tc := tls.Server(conn, cfg.tlsConfig)
			if err := tc.Handshake(); err != nil {
				s.results <- fmt.Errorf("test server: TLS: %w", err)
				return
			}
			st := tc.ConnectionState()
			tlsState = &st
			be = pgproto3.NewBackend(tc, tc)
		}
		if msg, err = be.ReceiveStartupMessage(); err != nil {
			s.results <- fmt.Errorf("test server: startup after SSLRequest: %w", err)
			return
		}
	}
	sm, ok := msg.(*pgproto3.StartupMessage)
	if !ok {
		s.results <- fmt.Errorf("test server: got %T, want StartupMessage", msg)
		return
	}
	user := sm.Parameters["user"]
	err = Authenticate(be, user, cfg.creds[user], tlsState)
	s.results <- err
	if err != nil {
		return
	}

	be.SetMaxBodyLen(1 << 20)
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
	be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	be.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch msg.(type) {
		case *pgproto3.Query:
			be.Send(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{
				Name: []byte("answer"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1,
			}}})
			be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("42")}})
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if be.Flush() != nil {
				return
			}
		default: // Terminate or anything else ends the session
			return
		}
	}
}

// result waits for the Authenticate result of the next connection.
func (s *authTestServer) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.results:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("no Authenticate result: server hangs")
		return nil
	}
}

// authTestConnect connects with pgconn and runs one query.
func authTestConnect(t *testing.T, addr, extra string) error {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%s dbname=app %s", host, port, extra))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	results, err := conn.Exec(ctx, "select answer").ReadAll()
	if err != nil {
		t.Fatalf("query after authentication: %v", err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || string(results[0].Rows[0][0]) != "42" {
		t.Fatalf("query after authentication: unexpected result %+v", results)
	}
	return nil
}

// authTestVerifier computes a PostgreSQL SCRAM-SHA-256 verifier from first
// principles (RFC 5802 section 3), independently of the code under test.
func authTestVerifier(t *testing.T, password string, salt []byte, iters int) string {
	t.Helper()
	salted, err := pbkdf2.Key(sha256.New, password, salt, iters, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iters, b64(salt), b64(storedKey[:]), b64(serverKey))
}

func TestAuthenticatePgconn(t *testing.T) {
	verifier := authTestVerifier(t, "v3rifier-pw", []byte("0123456789abcdef"), 4000)
	creds := map[string]*Credential{
		"scram":         {User: "scram", Method: AuthSCRAM, Password: "s3cret-scram"},
		"scram_unicode": {User: "scram_unicode", Method: AuthSCRAM, Password: "pässwörd\u00a0x"},
		"scram_ver":     {User: "scram_ver", Method: AuthSCRAM, SCRAMVerifier: verifier},
		"md5":           {User: "md5", Method: AuthMD5, Password: "s3cret-md5"},
		"md5_ver":       {User: "md5_ver", Method: AuthMD5, SCRAMVerifier: verifier},
		"trust":         {User: "trust", Method: AuthTrust},
		"scram_nopw":    {User: "scram_nopw", Method: AuthSCRAM},
		"md5_nopw":      {User: "md5_nopw", Method: AuthMD5},
		"scram_badver":  {User: "scram_badver", Method: AuthSCRAM, SCRAMVerifier: "SCRAM-SHA-256$4096:c2FsdA==$bm90MzJieXRlcw==:eA=="},
		"gss":           {User: "gss", Method: "gss", Password: "x"},
	}
	srv := startAuthTestServer(t, authTestServerConfig{creds: creds})

	tests := []struct {
		name     string
		user     string
		password string
		wantCode string // "" means success
		wantMsg  string
	}{
		{name: "scram from password", user: "scram", password: "s3cret-scram"},
		{name: "scram non-ASCII password", user: "scram_unicode", password: "pässwörd\u00a0x"},
		{name: "scram from verifier", user: "scram_ver", password: "v3rifier-pw"},
		{name: "md5", user: "md5", password: "s3cret-md5"},
		{name: "md5 with only a verifier runs scram", user: "md5_ver", password: "v3rifier-pw"},
		{name: "trust", user: "trust"},
		{name: "trust ignores a password", user: "trust", password: "anything"},
		{name: "scram wrong password", user: "scram", password: "Wr0ngGuess", wantCode: "28P01",
			wantMsg: `password authentication failed for user "scram"`},
		{name: "scram verifier wrong password", user: "scram_ver", password: "Wr0ngGuess", wantCode: "28P01",
			wantMsg: `password authentication failed for user "scram_ver"`},
		{name: "md5 wrong password", user: "md5", password: "Wr0ngGuess", wantCode: "28P01",
			wantMsg: `password authentication failed for user "md5"`},
		{name: "md5 password given to scram user", user: "scram", password: "s3cret-md5", wantCode: "28P01",
			wantMsg: `password authentication failed for user "scram"`},
		{name: "unknown user", user: "nobody", password: "s3cret-scram", wantCode: "28P01",
			wantMsg: `password authentication failed for user "nobody"`},
		{name: "scram user without secret", user: "scram_nopw", password: "", wantCode: "28P01",
			wantMsg: `password authentication failed for user "scram_nopw"`},
		{name: "md5 user without password", user: "md5_nopw", password: "", wantCode: "28P01",
			wantMsg: `password authentication failed for user "md5_nopw"`},
		{name: "malformed verifier", user: "scram_badver", password: "x", wantCode: "28P01",
			wantMsg: `password authentication failed for user "scram_badver"`},
		{name: "unsupported method", user: "gss", password: "x", wantCode: "28000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := "sslmode=disable user=" + tt.user
			if tt.password != "" {
				extra += " password='" + tt.password + "'"
			}
			err := authTestConnect(t, srv.addr, extra)
			serverErr := srv.result(t)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				if serverErr != nil {
					t.Fatalf("Authenticate: %v", serverErr)
				}
				return
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("connect error = %v, want a PgError %s", err, tt.wantCode)
			}
			if pgErr.Code != tt.wantCode || pgErr.Severity != "FATAL" {
				t.Errorf("got %s %s, want FATAL %s", pgErr.Severity, pgErr.Code, tt.wantCode)
			}
			if tt.wantMsg != "" && pgErr.Message != tt.wantMsg {
				t.Errorf("message = %q, want %q", pgErr.Message, tt.wantMsg)
			}
			if !errors.Is(serverErr, ErrAuthFailed) {
				t.Errorf("Authenticate error = %v, want ErrAuthFailed", serverErr)
			}
			for _, secret := range []string{tt.password, creds[tt.user].secret()} {
				if secret != "" && serverErr != nil && strings.Contains(serverErr.Error(), secret) {
					t.Errorf("Authenticate error %q contains a secret", serverErr)
				}
			}
		})
	}
}

// secret returns what must never appear in an error; nil-safe.
func (c *Credential) secret() string {
	if c == nil {
		return ""
	}
	return c.Password + c.SCRAMVerifier
}

func TestAuthenticateSCRAMOverTLS(t *testing.T) {
	creds := map[string]*Credential{"alice": {User: "alice", Method: AuthSCRAM, Password: "tls-pw"}}
	srv := startAuthTestServer(t, authTestServerConfig{creds: creds, tlsConfig: authTestTLSConfig(t)})

	// pgx on TLS sends the "y" GS2 flag: it could bind, but no PLUS was offered.
	if err := authTestConnect(t, srv.addr, "sslmode=require user=alice password=tls-pw"); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := srv.result(t); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	err := authTestConnect(t, srv.addr, "sslmode=require user=alice password=nope")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("wrong password over TLS: %v, want 28P01", err)
	}
	if err := srv.result(t); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Authenticate: %v, want ErrAuthFailed", err)
	}
}

func authTestTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "baton-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestAuthenticateSCRAMConcurrent(t *testing.T) {
	cred := &Credential{User: "bob", Method: AuthSCRAM, Password: "many"}
	srv := startAuthTestServer(t, authTestServerConfig{creds: map[string]*Credential{"bob": cred}})
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- authTestConnect(t, srv.addr, "sslmode=disable user=bob password=many") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for range n {
		if err := srv.result(t); err != nil {
			t.Error(err)
		}
	}
}

// authRawClient drives the exchange by hand, for what a real client never sends.
type authRawClient struct {
	t    *testing.T
	conn net.Conn
	fe   *pgproto3.Frontend
}

func authDialRaw(t *testing.T, addr, user string) *authRawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &authRawClient{t: t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	c.send(&pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters:      map[string]string{"user": user, "database": "app"},
	})
	return c
}

func (c *authRawClient) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatalf("client send: %v", err)
	}
}

func (c *authRawClient) receive() pgproto3.BackendMessage {
	c.t.Helper()
	msg, err := c.fe.Receive()
	if err != nil {
		c.t.Fatalf("client receive: %v", err)
	}
	return msg
}

// expectSASL reads AuthenticationSASL and checks only SCRAM-SHA-256 is offered.
func (c *authRawClient) expectSASL() {
	c.t.Helper()
	msg := c.receive()
	sasl, ok := msg.(*pgproto3.AuthenticationSASL)
	if !ok || len(sasl.AuthMechanisms) != 1 || sasl.AuthMechanisms[0] != "SCRAM-SHA-256" {
		c.t.Fatalf("got %#v, want AuthenticationSASL [SCRAM-SHA-256]", msg)
	}
}

// serverFirst sends a client-first-message with nonce and returns the
// server-first-message.
func (c *authRawClient) serverFirst(nonce string) string {
	c.t.Helper()
	c.expectSASL()
	c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + nonce)})
	msg := c.receive()
	cont, ok := msg.(*pgproto3.AuthenticationSASLContinue)
	if !ok {
		c.t.Fatalf("got %#v, want AuthenticationSASLContinue", msg)
	}
	return string(cont.Data)
}

func (c *authRawClient) expectError(code, message string) {
	c.t.Helper()
	msg := c.receive()
	er, ok := msg.(*pgproto3.ErrorResponse)
	if !ok {
		c.t.Fatalf("got %#v, want ErrorResponse %s", msg, code)
	}
	if er.Severity != "FATAL" || er.Code != code || (message != "" && er.Message != message) {
		c.t.Fatalf("got %s %s %q, want FATAL %s %q", er.Severity, er.Code, er.Message, code, message)
	}
}

func TestAuthenticateProtocolViolations(t *testing.T) {
	creds := map[string]*Credential{
		"alice": {User: "alice", Method: AuthSCRAM, Password: "pw"},
		"md5":   {User: "md5", Method: AuthMD5, Password: "pw"},
	}
	srv := startAuthTestServer(t, authTestServerConfig{creds: creds})
	const proof = "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

	tests := []struct {
		name     string
		user     string
		script   func(c *authRawClient)
		wantCode string // "" when the client just leaves
		wantMsg  string
	}{
		{
			name: "query instead of SASLInitialResponse", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.send(&pgproto3.Query{String: "select 1"})
			},
			wantCode: "08P01", wantMsg: "expected SASL response, got message type 81",
		},
		{
			name: "unknown message type", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.conn.Write([]byte{'@', 0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef})
			},
			wantCode: "08P01",
		},
		{
			name: "oversized message", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.conn.Write([]byte{'p', 0x40, 0, 0, 0})
			},
			wantCode: "08P01",
		},
		{
			name: "SASLInitialResponse without mechanism terminator", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.conn.Write([]byte{'p', 0, 0, 0, 7, 'a', 'b', 'c'})
			},
			wantCode: "08P01",
		},
		{
			name: "wrong mechanism", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-1", Data: []byte("n,,n=,r=abc")})
			},
			wantCode: "08P01", wantMsg: "client selected an invalid SASL authentication mechanism",
		},
		{
			name: "garbage client-first-message", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("\x00\xffgarbage")})
			},
			wantCode: "08P01", wantMsg: "malformed SCRAM message",
		},
		{
			name: "channel binding that was not offered", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256",
					Data: []byte("p=tls-server-end-point,,n=,r=abc")})
			},
			wantCode: "08P01",
		},
		{
			name: "authorization identity", user: "alice",
			script: func(c *authRawClient) {
				c.expectSASL()
				c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,a=root,n=,r=abc")})
			},
			wantCode: "0A000",
		},
		{
			name: "garbage client-final-message", user: "alice",
			script: func(c *authRawClient) {
				c.serverFirst("abc")
				c.send(&pgproto3.SASLResponse{Data: []byte("garbage")})
			},
			wantCode: "08P01", wantMsg: "malformed SCRAM message",
		},
		{
			name: "query instead of client-final-message", user: "alice",
			script: func(c *authRawClient) {
				c.serverFirst("abc")
				c.send(&pgproto3.Query{String: "select 1"})
			},
			wantCode: "08P01", wantMsg: "expected SASL response, got message type 81",
		},
		{
			name: "wrong nonce in client-final-message", user: "alice",
			script: func(c *authRawClient) {
				c.serverFirst("abc")
				c.send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=abcdef," + proof)})
			},
			wantCode: "28P01", wantMsg: `password authentication failed for user "alice"`,
		},
		{
			name: "short proof", user: "alice",
			script: func(c *authRawClient) {
				sf := c.serverFirst("abc")
				nonce, _, _ := strings.Cut(strings.TrimPrefix(sf, "r="), ",")
				c.send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + nonce + ",p=AAAA")})
			},
			wantCode: "28P01",
		},
		{
			name: "channel binding data mismatch", user: "alice",
			script: func(c *authRawClient) {
				sf := c.serverFirst("abc")
				nonce, _, _ := strings.Cut(strings.TrimPrefix(sf, "r="), ",")
				c.send(&pgproto3.SASLResponse{Data: []byte("c=eSws,r=" + nonce + "," + proof)})
			},
			wantCode: "08P01", wantMsg: "SCRAM channel binding check failed",
		},
		{
			name: "unknown user gets the same exchange", user: "mallory",
			script: func(c *authRawClient) {
				sf := c.serverFirst("abc")
				nonce, _, _ := strings.Cut(strings.TrimPrefix(sf, "r="), ",")
				c.send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + nonce + "," + proof)})
			},
			wantCode: "28P01", wantMsg: `password authentication failed for user "mallory"`,
		},
		{
			name: "query instead of md5 password", user: "md5",
			script: func(c *authRawClient) {
				if msg := c.receive(); fmt.Sprintf("%T", msg) != "*pgproto3.AuthenticationMD5Password" {
					t.Fatalf("got %#v, want AuthenticationMD5Password", msg)
				}
				c.send(&pgproto3.Query{String: "select 1"})
			},
			wantCode: "08P01", wantMsg: "expected password response, got message type 81",
		},
		{
			name: "empty user name", user: "",
			script:   func(c *authRawClient) {},
			wantCode: "28000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := authDialRaw(t, srv.addr, tt.user)
			tt.script(c)
			c.expectError(tt.wantCode, tt.wantMsg)
			if err := srv.result(t); !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("Authenticate = %v, want ErrAuthFailed", err)
			}
		})
	}
}

func TestAuthenticateClientGoesAway(t *testing.T) {
	creds := map[string]*Credential{"alice": {User: "alice", Method: AuthSCRAM, Password: "pw"}}
	srv := startAuthTestServer(t, authTestServerConfig{creds: creds, deadline: 500 * time.Millisecond})

	t.Run("close after AuthenticationSASL", func(t *testing.T) {
		c := authDialRaw(t, srv.addr, "alice")
		c.expectSASL()
		c.conn.Close()
		err := srv.result(t)
		if !errors.Is(err, ErrAuthFailed) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Authenticate = %v, want ErrAuthFailed and io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("close in the middle of a message", func(t *testing.T) {
		c := authDialRaw(t, srv.addr, "alice")
		c.serverFirst("abc")
		c.conn.Write([]byte{'p', 0, 0, 0, 100, 'c', '='})
		c.conn.Close()
		if err := srv.result(t); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Authenticate = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("terminate", func(t *testing.T) {
		c := authDialRaw(t, srv.addr, "alice")
		c.expectSASL()
		c.send(&pgproto3.Terminate{})
		if err := srv.result(t); !errors.Is(err, ErrAuthFailed) || !errors.Is(err, io.EOF) {
			t.Fatalf("Authenticate = %v, want ErrAuthFailed and io.EOF", err)
		}
	})
	t.Run("stall until the deadline", func(t *testing.T) {
		c := authDialRaw(t, srv.addr, "alice")
		c.serverFirst("abc")
		err := srv.result(t)
		var ne net.Error
		if !errors.Is(err, ErrAuthFailed) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Authenticate = %v, want ErrAuthFailed and a timeout", err)
		}
	})
}

// TestAuthenticateSCRAMEmptyInitialResponse drives the exchange with the xdg-go
// client (not the server under test), sending the client-first-message only
// after an empty challenge, and checks the server's signature.
func TestAuthenticateSCRAMEmptyInitialResponse(t *testing.T) {
	creds := map[string]*Credential{"alice": {User: "alice", Method: AuthSCRAM, Password: "pw"}}
	srv := startAuthTestServer(t, authTestServerConfig{creds: creds})
	client, err := scram.SHA256.NewClient("", "pw", "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()

	c := authDialRaw(t, srv.addr, "alice")
	c.expectSASL()
	c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256"})
	if cont, ok := c.receive().(*pgproto3.AuthenticationSASLContinue); !ok || len(cont.Data) != 0 {
		t.Fatalf("want an empty AuthenticationSASLContinue")
	}
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	c.send(&pgproto3.SASLResponse{Data: []byte(first)})
	cont, ok := c.receive().(*pgproto3.AuthenticationSASLContinue)
	if !ok {
		t.Fatal("want AuthenticationSASLContinue")
	}
	final, err := conv.Step(string(cont.Data))
	if err != nil {
		t.Fatal(err)
	}
	c.send(&pgproto3.SASLResponse{Data: []byte(final)})
	fin, ok := c.receive().(*pgproto3.AuthenticationSASLFinal)
	if !ok {
		t.Fatal("want AuthenticationSASLFinal")
	}
	if _, err := conv.Step(string(fin.Data)); err != nil || !conv.Valid() {
		t.Fatalf("server signature not valid: %v", err)
	}
	if _, ok := c.receive().(*pgproto3.AuthenticationOk); !ok {
		t.Fatal("want AuthenticationOk")
	}
	if err := srv.result(t); err != nil {
		t.Fatal(err)
	}
}

// TestAuthSCRAMSalts checks what a prober sees in the server-first-message:
// a configured user keeps its salt, a verifier's salt and iteration count are
// used, and an unknown user gets a salt of its own that is stable too.
func TestAuthSCRAMSalts(t *testing.T) {
	salt := []byte("fixed-salt-16byt")
	creds := map[string]*Credential{
		"alice":  {User: "alice", Method: AuthSCRAM, Password: "pw"},
		"alice2": {User: "alice2", Method: AuthSCRAM, Password: "pw"},
		"ver":    {User: "ver", Method: AuthSCRAM, SCRAMVerifier: authTestVerifier(t, "pw", salt, 5000)},
	}
	srv := startAuthTestServer(t, authTestServerConfig{creds: creds})
	factors := func(user string) string {
		c := authDialRaw(t, srv.addr, user)
		sf := c.serverFirst("abc")
		c.conn.Close()
		srv.result(t)
		_, f, ok := strings.Cut(sf, ",s=")
		if !strings.HasPrefix(sf, "r=abc") || !ok {
			t.Fatalf("server-first-message %q", sf)
		}
		return "s=" + f
	}
	if a, b := factors("alice"), factors("alice"); a != b || !strings.HasSuffix(a, ",i=4096") {
		t.Errorf("alice: %q then %q, want the same salt and i=4096", a, b)
	}
	if a, b := factors("alice"), factors("alice2"); a == b {
		t.Errorf("two credentials share the salt %q", a)
	}
	if got, want := factors("ver"), "s="+base64.StdEncoding.EncodeToString(salt)+",i=5000"; got != want {
		t.Errorf("verifier user: %q, want %q", got, want)
	}
	m1, m2, other := factors("mallory"), factors("mallory"), factors("trudy")
	if m1 != m2 || m1 == other || !strings.HasSuffix(m1, ",i=4096") {
		t.Errorf("unknown users: %q, %q, %q: want stable per user and distinct", m1, m2, other)
	}
	if raw, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(m1, "s="), ",i=4096")); len(raw) != 16 {
		t.Errorf("mock salt is %d bytes, want 16", len(raw))
	}
}

func TestAuthSCRAMCacheForgetsCollectedCredentials(t *testing.T) {
	size := func() int {
		authSCRAMCache.mu.Lock()
		defer authSCRAMCache.mu.Unlock()
		return len(authSCRAMCache.m)
	}
	before := size()
	func() {
		for i := range 4 {
			cred := &Credential{User: "u", Method: AuthSCRAM, Password: "pw" + strconv.Itoa(i)}
			if _, err := authSCRAMStored(cred); err != nil {
				t.Fatal(err)
			}
		}
	}()
	if size() < before+4 {
		t.Fatalf("cache size %d, want at least %d", size(), before+4)
	}
	deadline := time.Now().Add(5 * time.Second)
	for size() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if size() > before {
		t.Fatalf("cache size %d after GC, want %d", size(), before)
	}
}

func TestAuthSCRAMCacheRebuildsChangedCredential(t *testing.T) {
	cred := &Credential{User: "u", Method: AuthSCRAM, Password: "one"}
	a, err := authSCRAMStored(cred)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := authSCRAMStored(cred)
	if a.Salt != b.Salt || string(a.StoredKey) != string(b.StoredKey) {
		t.Fatal("same credential derived twice")
	}
	cred.Password = "two"
	c, _ := authSCRAMStored(cred)
	if string(a.StoredKey) == string(c.StoredKey) {
		t.Fatal("changed password still uses the old keys")
	}
	runtime.KeepAlive(cred)
}

func TestAuthParseSCRAMVerifier(t *testing.T) {
	good := authTestVerifier(t, "pw", []byte("salt"), 4096)
	if _, err := authParseSCRAMVerifier(good); err != nil {
		t.Fatalf("valid verifier: %v", err)
	}
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, v := range []string{
		"",
		"md5abcdef",
		"SCRAM-SHA-1$4096:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA==",
		"SCRAM-SHA-256$4096c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$0:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$-1:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$x:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$4096:$" + key + ":" + key,
		"SCRAM-SHA-256$4096:!!!$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$" + key + ":c2FsdA==",
		"SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:" + key,
	} {
		if _, err := authParseSCRAMVerifier(v); err == nil {
			t.Errorf("%q: no error", v)
		} else if strings.Contains(err.Error(), key) {
			t.Errorf("%q: error %q repeats the secret", v, err)
		}
	}
}

func TestAuthMD5Response(t *testing.T) {
	salt := [4]byte{1, 2, 3, 4}
	inner := fmt.Sprintf("%x", md5.Sum([]byte("secret"+"alice")))
	want := fmt.Sprintf("md5%x", md5.Sum(append([]byte(inner), salt[:]...)))
	if got := string(authMD5Response("alice", "secret", salt)); got != want {
		t.Fatalf("authMD5Response = %q, want %q", got, want)
	}
}
