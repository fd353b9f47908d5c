package pgwire

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// testVerifier makes a PostgreSQL SCRAM verifier for password with the given salt.
func testVerifier(t testing.TB, password, salt string) string {
	t.Helper()
	c, err := scram.SHA256.NewClient("", password, "")
	if err != nil {
		t.Fatal(err)
	}
	sc := c.GetStoredCredentials(scram.KeyFactors{Salt: salt, Iters: 4096})
	b := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$4096:" + b([]byte(salt)) + "$" + b(sc.StoredKey) + ":" + b(sc.ServerKey)
}

func testMD5Secret(user, password string) string {
	h := md5.Sum([]byte(password + user))
	return "md5" + hex.EncodeToString(h[:])
}

// keyServer accepts one connection, reads its StartupMessage, runs AuthenticateKey with cred
// and, on success, sends ReadyForQuery. It returns the key and error on the channel.
func keyServer(t *testing.T, cred *Credential) (addr string, res chan keyResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	res = make(chan keyResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- keyResult{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, pkt, err := ReadStartupPacket(c)
		if err != nil {
			res <- keyResult{err: err}
			return
		}
		p, _ := DecodeStartup(pkt)
		be := pgproto3.NewBackend(c, c)
		key, err := AuthenticateKey(be, p["user"], cred, nil)
		if err == nil {
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			err = be.Flush()
		}
		res <- keyResult{key: key, err: err}
	}()
	return ln.Addr().String(), res
}

type keyResult struct {
	key *BackendKey
	err error
}

func pgconnLogin(addr, user, password string) error {
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(addr)
	cfg.Host = host
	var pn uint16
	for _, c := range port {
		pn = pn*10 + uint16(c-'0')
	}
	cfg.Port, cfg.User, cfg.Password = pn, user, password
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		c.Close(ctx)
	}
	return err
}

// loginTo runs Login against a server that authenticates with cred.
func loginTo(t *testing.T, cred *Credential, key *BackendKey) error {
	t.Helper()
	addr, res := keyServer(t, cred)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	lerr := Login(c, map[string]string{"user": cred.User}, key)
	if lerr == nil {
		// The next message is the server's ReadyForQuery: Login read nothing past AuthOk.
		typ, _, err := loginRead(c)
		if err != nil || typ != 'Z' {
			t.Fatalf("after Login: %q %v", typ, err)
		}
	}
	c.Close()
	<-res
	return lerr
}

// The ClientKey recovered from a client's SCRAM proof logs in to a server holding the same
// verifier; a server holding another verifier (changed password) refuses it before any proof is
// sent, and a wrong client password yields no key.
func TestSCRAMClientKeyPassthrough(t *testing.T) {
	ver := testVerifier(t, "s3cret", "0123456789abcdef")
	cred, err := CredentialFromRolPassword("alice", ver)
	if err != nil || cred.Method != AuthSCRAM {
		t.Fatalf("credential: %+v %v", cred, err)
	}
	addr, res := keyServer(t, cred)
	if err := pgconnLogin(addr, "alice", "s3cret"); err != nil {
		t.Fatalf("client login: %v", err)
	}
	r := <-res
	if r.err != nil || r.key == nil || len(r.key.ClientKey) != 32 {
		t.Fatalf("AuthenticateKey: key %v err %v", r.key != nil, r.err)
	}
	if strings.Contains(r.key.GoString(), "s3cret") {
		t.Fatal("key prints")
	}
	if err := loginTo(t, cred, r.key); err != nil {
		t.Fatalf("backend login with the ClientKey: %v", err)
	}
	other, _ := CredentialFromRolPassword("alice", testVerifier(t, "new", "fedcba9876543210"))
	if err := loginTo(t, other, r.key); err == nil || !strings.Contains(err.Error(), "password changed") {
		t.Fatalf("login against a changed verifier: %v", err)
	}
	// Same salt, other password: the server rejects the proof.
	same, _ := CredentialFromRolPassword("alice", testVerifier(t, "new", "0123456789abcdef"))
	var sle *ServerLoginError
	if err := loginTo(t, same, r.key); !errors.As(err, &sle) || sle.Resp.Code != "28P01" {
		t.Fatalf("login against another password with the same salt: %v", err)
	}

	addr, res = keyServer(t, cred)
	var pe *pgconn.PgError
	if err := pgconnLogin(addr, "alice", "wrong"); !errors.As(err, &pe) || pe.Code != "28P01" ||
		pe.Message != `password authentication failed for user "alice"` {
		t.Fatalf("wrong password: %v", err)
	}
	if r := <-res; r.err == nil || r.key != nil {
		t.Fatalf("wrong password gave key %v err %v", r.key != nil, r.err)
	}
}

// An md5 rolpassword verifies the client's md5 response and answers the server's md5 challenge.
func TestMD5SecretPassthrough(t *testing.T) {
	cred, err := CredentialFromRolPassword("bob", testMD5Secret("bob", "pw"))
	if err != nil || cred.Method != AuthMD5 {
		t.Fatalf("credential: %+v %v", cred, err)
	}
	addr, res := keyServer(t, cred)
	if err := pgconnLogin(addr, "bob", "pw"); err != nil {
		t.Fatalf("client login: %v", err)
	}
	r := <-res
	if r.err != nil || r.key == nil || r.key.MD5 == "" {
		t.Fatalf("AuthenticateKey: %v", r.err)
	}
	if err := loginTo(t, cred, r.key); err != nil {
		t.Fatalf("backend md5 login: %v", err)
	}
	// A server that runs SCRAM for the role cannot be answered with an md5 hash.
	scr, _ := CredentialFromRolPassword("bob", testVerifier(t, "pw", "0123456789abcdef"))
	if err := loginTo(t, scr, r.key); !errors.Is(err, ErrLoginUnsupported) {
		t.Fatalf("md5 key against SCRAM: %v", err)
	}
	addr, res = keyServer(t, cred)
	var pe *pgconn.PgError
	if err := pgconnLogin(addr, "bob", "nope"); !errors.As(err, &pe) || pe.Code != "28P01" {
		t.Fatalf("wrong md5 password: %v", err)
	}
	<-res
}

func TestCredentialFromRolPassword(t *testing.T) {
	for _, tc := range []struct{ name, pw, err string }{
		{"empty", "", "no password"},
		{"plain", "hunter2", "neither"},
		{"bad scram", "SCRAM-SHA-256$x", "malformed"},
		{"bad md5", "md5XYZ", "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CredentialFromRolPassword("u", tc.pw)
			if err == nil || !strings.Contains(err.Error(), tc.err) || c == nil || c.SCRAMVerifier != "" || c.MD5Secret != "" {
				t.Fatalf("got %+v, %v", c, err)
			}
			if tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
				t.Fatal("error holds the secret")
			}
		})
	}
}
