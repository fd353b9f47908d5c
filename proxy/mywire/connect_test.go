package mywire

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// dial connects through Connect and closes the connection at the end of the test.
func dial(t *testing.T, addr string, cfg ClientConfig) (*ClientConn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	cc, err := Connect(c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(func() {
		quit, _ := AppendPacket(nil, 0, []byte{ComQuit})
		cc.Conn.Write(quit)
		cc.Conn.Close()
	})
	return cc, nil
}

// roundTrip sends one command and reads its whole response through a Tracker. It returns the
// tracker and copies of the response payloads.
func roundTrip(t *testing.T, cc *ClientConn, payload []byte) (*Tracker, [][]byte) {
	t.Helper()
	out, _ := AppendPacket(nil, 0, payload)
	if _, err := cc.Conn.Write(out); err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(payload[0], cc.Caps)
	var got [][]byte
	for !tr.Done() {
		p, _, err := cc.R.Next()
		if err != nil {
			t.Fatalf("reading the response to %#x: %v", payload[0], err)
		}
		got = append(got, append([]byte(nil), p...))
		if _, err := tr.Feed(p); err != nil {
			t.Fatalf("tracking the response to %#x: %v (packet % x)", payload[0], err, p[:min(len(p), 32)])
		}
		if _, ok := tr.WantsLocalInfile(); ok {
			return tr, got
		}
	}
	if cc.R.Buffered() != 0 {
		t.Fatalf("%d bytes left after the response", cc.R.Buffered())
	}
	return tr, got
}

func query(sql string) []byte { return append([]byte{ComQuery}, sql...) }

func TestConnectFake(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	native := &Credential{User: "native", Password: "n-pass"}
	sha2 := &Credential{User: "sha2", Password: "s-pass", Plugin: PluginCachingSHA2Password}
	s := newFakeServer(t, PluginCachingSHA2Password, func(s *fakeServer) {
		s.tlsConf = srvTLS
		s.rsaKey = rsaKey(t)
	}, native, sha2)
	noDeprecate := DefaultClientCaps &^ ClientDeprecateEOF
	tests := []struct {
		name   string
		cfg    ClientConfig
		denied bool
	}{
		{"native via auth switch", ClientConfig{User: "native", Password: "n-pass"}, false},
		{"native without DEPRECATE_EOF", ClientConfig{User: "native", Password: "n-pass", Caps: noDeprecate}, false},
		{"native wrong password", ClientConfig{User: "native", Password: "bad"}, true},
		{"sha2 RSA key retrieval", ClientConfig{User: "sha2", Password: "s-pass"}, false},
		{"sha2 fast path", ClientConfig{User: "sha2", Password: "s-pass"}, false},
		{"sha2 fast path wrong password", ClientConfig{User: "sha2", Password: "bad"}, true},
		{"sha2 pinned key", ClientConfig{User: "sha2", Password: "s-pass", ServerPubKey: &rsaKey(t).PublicKey}, false},
		{"sha2 over TLS", ClientConfig{User: "sha2", Password: "s-pass", TLS: cliTLS, Database: "db",
			ConnectAttrs: map[string]string{"program_name": "baton"}}, false},
		{"unknown user over TLS", ClientConfig{User: "nobody", Password: "x", TLS: cliTLS}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "sha2 RSA key retrieval" || tt.name == "sha2 over TLS" { // full authentication
				s.cache.Forget("sha2")
			}
			cc, err := dial(t, s.addr(), tt.cfg)
			serverErr := s.authResult()
			if tt.denied {
				var se *ServerError
				if !errors.As(err, &se) || se.Code != ErAccessDenied || se.State != "28000" {
					t.Fatalf("err = %v, want ServerError 1045", err)
				}
				if !errors.Is(serverErr, ErrAccessDenied) {
					t.Fatalf("server: %v", serverErr)
				}
				return
			}
			if err != nil || serverErr != nil {
				t.Fatalf("Connect: %v (server: %v)", err, serverErr)
			}
			if cc.Status != StatusAutocommit || cc.ServerVersion != "8.0.36-mywire-fake" || cc.ConnID == 0 {
				t.Fatalf("conn = %+v", cc)
			}
			if _, isTLS := cc.Conn.(*tls.Conn); isTLS != (tt.cfg.TLS != nil) {
				t.Fatalf("TLS = %v", isTLS)
			}
			wantDep := tt.cfg.Caps == 0
			if (cc.Caps&ClientDeprecateEOF != 0) != wantDep || cc.Caps&ClientSSL != 0 != (tt.cfg.TLS != nil) {
				t.Fatalf("caps = %#x", cc.Caps)
			}
			tr, ps := roundTrip(t, cc, query("SELECT name, n FROM pets"))
			wantPackets := 6
			if !wantDep {
				wantPackets = 7
			}
			if len(ps) != wantPackets || tr.Status() != StatusAutocommit || tr.Err() != nil {
				t.Fatalf("%d packets, status %#x, err %v", len(ps), tr.Status(), tr.Err())
			}
			tr, _ = roundTrip(t, cc, []byte{ComPing})
			if tr.OK() == nil {
				t.Fatal("no OK for ping")
			}
			tr, _ = roundTrip(t, cc, query("nonsense"))
			if e := tr.Err(); e == nil || e.Code != 1064 || e.State != "42000" {
				t.Fatalf("Err = %+v", e)
			}
		})
	}
}

// A server that refuses the connection outright (ERR instead of the greeting).
func TestConnectRefusedGreeting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(AppendERR(nil, 0, ERR{Code: 1040, Message: "Too many connections"}, 0))
	}()
	_, err = dial(t, ln.Addr().String(), ClientConfig{User: "u"})
	var se *ServerError
	if !errors.As(err, &se) || se.Code != 1040 || se.Message != "Too many connections" {
		t.Fatalf("err = %v", err)
	}
	<-done
}

// Connect refuses to continue without TLS when TLS was asked for.
func TestConnectRequiresTLS(t *testing.T) {
	s := newFakeServer(t, PluginNativePassword, nil, &Credential{User: "u", Password: "p"})
	_, cli := testTLS(t)
	_, err := dial(t, s.addr(), ClientConfig{User: "u", Password: "p", TLS: cli})
	if err == nil {
		t.Fatal("connected without TLS")
	}
	s.authResult()
}
