package pool

import (
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// sockConn is a pooled connection over a real loopback socket.
type sockConn struct{ c net.Conn }

func (s *sockConn) Close()            { s.c.Close() }
func (s *sockConn) NetConn() net.Conn { return s.c }

// server accepts loopback connections and hands the server sides to the test.
func server(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

func sockNode(t *testing.T, addr string) (*Node[*sockConn], *atomic.Int64) {
	cfg := &topology.Pool{MaxPerNode: 4, AcquireTimeout: topology.Duration(time.Second),
		ConnectTimeout: topology.Duration(time.Second), IdleTimeout: topology.Duration(time.Minute)}
	var dials atomic.Int64
	n := NewNode(cfg, func(ctx context.Context, k Key) (*sockConn, error) {
		dials.Add(1)
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		return &sockConn{c}, err
	}, func(*sockConn) bool { return true })
	return n, &dials
}

func TestIdleConnClosedByServerIsNotHandedOut(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("peerClosed inspects sockets only on Linux and BSDs")
	}
	addr, accepted := server(t)
	n, dials := sockNode(t, addr)
	k := Key{User: "u"}
	c, err := n.Acquire(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	n.Release(c, k, true)

	// An idle connection the server still holds open is reused.
	if c2, err := n.Acquire(context.Background(), k); err != nil || c2 != c || dials.Load() != 1 {
		t.Fatalf("open idle connection not reused: %v, same %v, dials %d", err, c2 == c, dials.Load())
	}
	n.Release(c, k, true)

	// The server closes it while idle: the next Acquire dials afresh and frees the old slot.
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !peerClosed(c.c) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // until the FIN has arrived
	}
	c3, err := n.Acquire(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if c3 == c || dials.Load() != 2 {
		t.Fatalf("a connection the server closed was handed out (dials %d)", dials.Load())
	}
	if open, _ := n.Stats(); open != 1 {
		t.Fatalf("open %d, want 1 (the dead one's slot is freed)", open)
	}
}

func TestCutClosesBusyAndIdle(t *testing.T) {
	addr, accepted := server(t)
	n, _ := sockNode(t, addr)
	k := Key{User: "u"}
	busy, err := n.Acquire(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := n.Acquire(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	n.Release(idle, k, true)
	<-accepted
	<-accepted
	if got := n.Cut(); got != 2 {
		t.Fatalf("Cut closed %d connections, want 2 (one busy, one idle)", got)
	}
	// The busy connection's owner sees a closed socket.
	if _, err := busy.c.Write([]byte("x")); err == nil {
		t.Fatal("the busy connection still works after Cut")
	}
	if _, idleNow := n.Stats(); idleNow != 0 {
		t.Fatalf("%d idle connections after Cut", idleNow)
	}
	// Its owner releases it as broken; the pool is empty and still usable.
	n.Release(busy, k, false)
	if open, _ := n.Stats(); open != 0 {
		t.Fatalf("open %d after Cut and release", open)
	}
	if _, err := n.Acquire(context.Background(), k); err != nil {
		t.Fatalf("pool unusable after Cut: %v", err)
	}
}
