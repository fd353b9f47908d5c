package health_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5/pgconn"
)

// fakePG accepts one connection at a time and runs serve on it; it returns the address.
func fakePG(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	}()
	return l.Addr().String()
}

// readSSLRequest reads the 8-byte SSLRequest and reports whether it is one.
func readSSLRequest(c net.Conn) bool {
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return false
	}
	return binary.BigEndian.Uint32(b[:4]) == 8 && binary.BigEndian.Uint32(b[4:]) == 80877103
}

func resolve(t *testing.T, addr string, bt topology.BackendTLS) *topology.NodeTLS {
	t.Helper()
	n := &topology.Node{Name: "db1", Address: addr}
	cl := &topology.Cluster{Name: "c", Nodes: []*topology.Node{n}, BackendTLS: bt}
	if err := cl.ResolveBackendTLS(); err != nil {
		t.Fatal(err)
	}
	return n.TLS()
}

func TestPGStartTLSAnswers(t *testing.T) {
	answer := func(b ...byte) string {
		return fakePG(t, func(c net.Conn) {
			if readSSLRequest(c) {
				c.Write(b)
			}
		})
	}
	dial := func(addr string, mode topology.TLSMode) (net.Conn, net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		nt := resolve(t, addr, topology.BackendTLS{Mode: mode})
		got, err := health.PGStartTLS(ctx, c, nt, mode == topology.TLSPrefer)
		return c, got, err
	}
	no := answer('N')
	if c, got, err := dial(no, topology.TLSPrefer); err != nil || got != c {
		t.Fatalf("prefer, server says N: %v, %T", err, got)
	}
	_, _, err := dial(no, topology.TLSRequire)
	if !errors.Is(err, topology.ErrNoServerTLS) || !strings.Contains(err.Error(), "node db1") || !strings.Contains(err.Error(), "backend_tls.mode is require") {
		t.Fatalf("require, server says N: %v", err)
	}
	body := "SFATAL\x00C08P01\x00Munsupported frontend protocol\x00\x00"
	e := binary.BigEndian.AppendUint32([]byte{'E'}, uint32(4+len(body)))
	_, _, err = dial(answer(append(e, body...)...), topology.TLSPrefer)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08P01" {
		t.Fatalf("server answers an ErrorResponse: %v", err)
	}
	if _, _, err = dial(answer('X'), topology.TLSPrefer); err == nil || !strings.Contains(err.Error(), "unexpected answer") {
		t.Fatalf("server answers X: %v", err)
	}
}

// A CancelRequest for a TLS connection goes inside TLS: the fake server reads it only after
// its handshake.
func TestDialPGCancelEncrypted(t *testing.T) {
	f, err := cluster.GenerateTLS(t.TempDir(), "app")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint32, 1)
	addr := fakePG(t, func(c net.Conn) {
		if !readSSLRequest(c) {
			return
		}
		c.Write([]byte{'S'})
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		var msg [16]byte
		if _, err := io.ReadFull(tc, msg[:]); err != nil {
			return
		}
		if binary.BigEndian.Uint32(msg[4:8]) == 80877102 {
			got <- binary.BigEndian.Uint32(msg[8:12])
		}
	})
	nt := resolve(t, addr, topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: f.CAFile})
	c, err := health.DialPGCancel(t.Context(), nt, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*tls.Conn); !ok {
		t.Fatalf("cancel connection %T", c)
	}
	msg := binary.BigEndian.AppendUint32(nil, 16)
	msg = binary.BigEndian.AppendUint32(msg, 80877102)
	msg = binary.BigEndian.AppendUint32(msg, 4242)
	msg = binary.BigEndian.AppendUint32(msg, 7)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	select {
	case pid := <-got:
		if pid != 4242 {
			t.Fatalf("pid %d", pid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not read the CancelRequest inside TLS")
	}
}
