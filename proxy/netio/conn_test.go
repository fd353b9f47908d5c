package netio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end of a loopback TCP connection.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-acc
	if srv == nil {
		t.Fatal("accept failed")
	}
	w, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatalf("Wrap(%T) did not wrap", c)
	}
	t.Cleanup(func() { w.Close(); srv.Close() })
	return w, srv
}

func TestReadWriteLarge(t *testing.T) {
	c, srv := pair(t)
	// More than the socket buffers and maxWrite: Write must wait for writability in between.
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(srv)
		got <- b
	}()
	if n, err := c.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	c.Conn.(*net.TCPConn).CloseWrite()
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("server read %d bytes, want %d identical", len(b), len(data))
	}
	// And back: the server writes, Read waits for data, then sees EOF.
	go func() {
		srv.Write(data)
		srv.Close()
	}()
	b, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadAll = %d bytes, %v", len(b), err)
	}
}

func TestDeadlineAndClose(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		done <- err
	}()
	c.Close() // wakes the blocked Read
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
	}
}

func TestPeerClosedAndReset(t *testing.T) {
	c, srv := pair(t)
	if c.PeerClosed() {
		t.Fatal("PeerClosed on an open idle connection")
	}
	srv.(*net.TCPConn).SetLinger(0) // close with RST
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !c.PeerClosed() {
		if time.Now().After(deadline) {
			t.Fatal("PeerClosed never saw the reset")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after the peer's reset succeeded")
	}
	// A Read that meets the reset itself reports it as net.Conn does.
	c2, srv2 := pair(t)
	srv2.(*net.TCPConn).SetLinger(0)
	srv2.Close()
	_, err := c2.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after RST = %v, want ECONNRESET", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read after RST = %#v, want a *net.OpError from read", err)
	}
}

func TestNoAllocs(t *testing.T) {
	c, srv := pair(t)
	msg := []byte("ping")
	buf := make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		c.Write(msg)
		io.ReadFull(srv, buf[:4])
		srv.Write(msg)
		c.Read(buf)
	})
	// srv is a plain net.Conn (its reads and writes do not allocate either).
	if allocs > 0 {
		t.Fatalf("%.1f allocations per round trip, want 0", allocs)
	}
}
