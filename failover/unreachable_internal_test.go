package failover

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// A fence that cannot reach its node (refused, or no answer in time) is unreachable, which the
// failover logs as a skipped step; one the server answered with an error is not.
func TestFenceUnreachable(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	silent := func(t *testing.T) string { return fakeServer(t, nil) }
	pgAuthFails := func(t *testing.T) string {
		return fakeServer(t, func(c net.Conn) {
			var n uint32
			if binary.Read(c, binary.BigEndian, &n) != nil || n < 4 {
				return
			}
			io.CopyN(io.Discard, c, int64(n-4)) // the StartupMessage
			body := "SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed for user \"postgres\"\x00\x00"
			msg := binary.BigEndian.AppendUint32([]byte{'E'}, uint32(4+len(body)))
			c.Write(append(msg, body...))
		})
	}
	myTooMany := func(t *testing.T) string {
		return fakeServer(t, func(c net.Conn) {
			// An ERR packet instead of the greeting, as a server at max_connections sends.
			body := append([]byte{0xff, 0x10, 0x04}, "Too many connections"...)
			hdr := []byte{byte(len(body)), byte(len(body) >> 8), byte(len(body) >> 16), 0}
			c.Write(append(hdr, body...))
		})
	}
	engines := map[topology.Engine]func(*topology.Cluster) Engine{
		topology.EnginePostgres: func(cl *topology.Cluster) Engine { return NewPG(cl) },
		topology.EngineMySQL:    func(cl *topology.Cluster) Engine { return NewMy(cl) },
	}
	for _, tc := range []struct {
		name        string
		engine      topology.Engine
		addr        func(*testing.T) string
		unreachable bool
	}{
		{"postgres refused", topology.EnginePostgres, refused, true},
		{"postgres silent", topology.EnginePostgres, silent, true},
		{"postgres authentication failed", topology.EnginePostgres, pgAuthFails, false},
		{"mysql refused", topology.EngineMySQL, refused, true},
		{"mysql silent", topology.EngineMySQL, silent, true},
		{"mysql too many connections", topology.EngineMySQL, myTooMany, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := &topology.Node{Name: "n1", Address: tc.addr(t)}
			cl := &topology.Cluster{Name: "c", Engine: tc.engine, Database: "app", Nodes: []*topology.Node{node},
				Users:    []*topology.User{{Name: "u", BackendUser: "u", BackendPassword: "p"}},
				Failover: topology.Failover{User: "u"},
				Pool:     topology.Pool{ConnectTimeout: topology.Duration(5 * time.Second)}}
			e := engines[tc.engine](cl)
			defer e.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err := e.Fence(ctx, node)
			if err == nil {
				t.Fatal("fence succeeded")
			}
			if got := isUnreachable(err); got != tc.unreachable {
				t.Fatalf("unreachable = %v, want %v: %v", got, tc.unreachable, err)
			}
		})
	}
}

// fakeServer listens on loopback and runs serve on every connection (nil: hold it silently
// until the test ends); it returns the address.
func fakeServer(t *testing.T, serve func(net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if serve != nil {
					serve(c)
				}
				<-done
			}()
		}
	}()
	return l.Addr().String()
}
