package mytest

import (
	"bytes"
	"database/sql"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
)

// stillServes requires a new go-sql-driver client through b to work and read from a replica.
func stillServes(t *testing.T, b *batontest.Baton) {
	t.Helper()
	ctx := ctxT(t)
	db, err := sql.Open("mysql", b.DSN(my, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("a normal client after the bad one: %v", err)
	}
	wantReplica(t, "a normal client's read after the bad one", where(t, db, ctx, ""))
}

// waitNoSessions waits until b has no client session left (nothing leaked).
func waitNoSessions(t *testing.T, b *batontest.Baton) {
	t.Helper()
	m := b.Inst.Clusters()[0].My.Metrics()
	deadline := time.Now().Add(5 * time.Second)
	for m.Sessions.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("baton still counts %d client sessions after every client left", m.Sessions.Load())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter: there is nothing to wait on
	}
}

func closeWrite(t *testing.T, w *wireConn) {
	t.Helper()
	if err := w.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

func TestBadHandshake(t *testing.T) {
	addr := baton.Inst.Clusters()[0].Addr().String()
	t.Run("http-request", func(t *testing.T) {
		w := wireDial(t, addr)
		if _, err := w.c.Write([]byte("GET / HTTP/1.1\r\nHost: baton\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		w.expectClosed("an HTTP request instead of a handshake response", 5*time.Second)
		stillServes(t, baton)
	})
	t.Run("short-packet", func(t *testing.T) {
		w := wireDial(t, addr)
		w.mustWrite(1, []byte{1, 2, 3, 4, 5})
		w.expectErr("a 5-byte handshake response", 2, 1043)
		w.expectClosed("after Bad handshake", 5*time.Second)
		stillServes(t, baton)
	})
	t.Run("random-packet", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 20; i++ {
			w := wireDial(t, addr)
			junk := make([]byte, 1+r.IntN(300))
			for j := range junk {
				junk[j] = byte(r.UintN(256))
			}
			w.mustWrite(1, junk)
			if e := w.expectClosed("a random handshake response", 5*time.Second); e == nil {
				t.Fatalf("random handshake response %x: the connection was closed without an ERR packet", junk)
			}
		}
		stillServes(t, baton)
	})
	t.Run("truncated", func(t *testing.T) {
		w := wireDial(t, addr)
		resp := handshakeResponse("app", "app", "mysql_native_password", nativeScramble("app", w.salt))
		full := []byte{byte(len(resp)), 0, 0, 1}
		full = append(full, resp...)
		if _, err := w.c.Write(full[:4+len(resp)/2]); err != nil {
			t.Fatal(err)
		}
		closeWrite(t, w)
		w.expectClosed("a handshake response cut in half, then EOF", 5*time.Second)
		stillServes(t, baton)
	})
}

func TestStartupTimeout(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(c *topology.Cluster) {
		c.Limits.StartupTimeout = topology.Duration(500 * time.Millisecond)
	})
	addr := b.Inst.Clusters()[0].Addr().String()
	for _, tc := range []struct {
		name string
		send func(w *wireConn)
	}{
		{"silent", func(w *wireConn) {}},
		{"half-header", func(w *wireConn) { w.c.Write([]byte{60, 0}) }},
		{"half-response", func(w *wireConn) {
			resp := handshakeResponse("app", "app", "mysql_native_password", nativeScramble("app", w.salt))
			w.c.Write(append([]byte{byte(len(resp)), 0, 0, 1}, resp[:10]...))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := wireDial(t, addr)
			start := time.Now()
			tc.send(w)
			w.expectClosed("a handshake that never completes", 2*time.Second)
			if el := time.Since(start); el < 300*time.Millisecond {
				t.Fatalf("closed after %v; the startup timeout is 500ms", el)
			}
			stillServes(t, b)
		})
	}
	waitNoSessions(t, b)
}

func TestBadCommandPackets(t *testing.T) {
	addr := baton.Inst.Clusters()[0].Addr().String()
	t.Run("wrong-sequence-id", func(t *testing.T) {
		w := wireLogin(t, addr)
		w.mustWrite(1, append([]byte{wireComQuery}, "SELECT 1"...))
		w.expectErr("a command with sequence id 1", 2, 1156)
		w.expectClosed("after Got packets out of order", 5*time.Second)
		stillServes(t, baton)
	})
	t.Run("unknown-command", func(t *testing.T) {
		w := wireLogin(t, addr)
		w.mustWrite(0, []byte{0x60, 1, 2, 3})
		w.expectErr("command byte 0x60", 1, 1047)
		// Like the server, baton keeps the connection.
		w.ping()
		wantReplica(t, "a read after an unknown command", w.portOf())
		stillServes(t, baton)
	})
	t.Run("truncated-command", func(t *testing.T) {
		w := wireLogin(t, addr)
		wantReplica(t, "a read on the raw connection", w.portOf())
		q := append([]byte{wireComQuery}, "SELECT 'truncated', @@port"...)
		if _, err := w.c.Write(append([]byte{byte(len(q)), 0, 0, 0}, q[:len(q)/2]...)); err != nil {
			t.Fatal(err)
		}
		closeWrite(t, w)
		w.expectClosed("a command cut in half, then EOF", 5*time.Second)
		stillServes(t, baton)
	})
	t.Run("quit", func(t *testing.T) {
		w := wireLogin(t, addr)
		w.mustWrite(0, []byte{wireComQuit})
		if e := w.expectClosed("COM_QUIT", 5*time.Second); e != nil {
			t.Fatalf("COM_QUIT answered %v", e)
		}
	})
}

func TestOversizedPacket(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(c *topology.Cluster) {
		c.Limits.MaxMessageSize = 4096
	})
	addr := b.Inst.Clusters()[0].Addr().String()
	// Just under the limit works.
	w := wireLogin(t, addr)
	small := "SELECT '" + strings.Repeat("s", 3000) + "', @@port"
	if rows := w.mustQuery(small); len(rows) != 1 || len(rows[0][0]) != 3000 {
		t.Fatalf("a 3 KB query returned %d rows", len(rows))
	}
	w.c.Close()
	// 64 KiB is refused with ERR 1153 and the connection closed.
	w = wireLogin(t, addr)
	big := append([]byte{wireComQuery}, "SELECT '"...)
	big = append(big, bytes.Repeat([]byte("x"), 64<<10)...)
	big = append(big, '\'')
	wrote := make(chan error, 1)
	go func() { wrote <- w.write(0, big) }() // baton may stop reading: never block on it
	w.expectErr("a 64 KiB COM_QUERY with max_message_size 4096", 1, 1153)
	w.expectClosed("after the oversized packet", 5*time.Second)
	w.c.Close()
	<-wrote
	stillServes(t, b)
	waitNoSessions(t, b)
}

func TestPing(t *testing.T) {
	ctx := ctxT(t)
	c := conn(t, "")
	for i := 0; i < 3; i++ {
		if err := c.PingContext(ctx); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	wantReplica(t, "a read after COM_PING", where(t, c, ctx, ""))
	// COM_PING inside a transaction keeps the transaction.
	mustExec(t, c, "BEGIN")
	p := where(t, c, ctx, "")
	wantPrimary(t, "a read inside BEGIN", p)
	if err := c.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	var inTx int
	if err := c.QueryRowContext(ctx, "SELECT @@in_transaction").Scan(&inTx); err != nil || inTx != 1 {
		t.Fatalf("after COM_PING inside a transaction @@in_transaction = %d, %v", inTx, err)
	}
	mustExec(t, c, "COMMIT")
	// Raw COM_PING with the sequence ids checked.
	w := wireLogin(t, baton.Inst.Clusters()[0].Addr().String())
	w.ping()
	w.ping()
}
