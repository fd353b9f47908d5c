package pgtest

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// startupPacket builds an untyped startup-phase packet: length, code, then body.
func startupPacket(code uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, body...)
}

func startupParams(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		b = append(append(b, s...), 0)
	}
	return append(b, 0)
}

// frame builds a typed message with a correct length.
func frame(typ byte, body []byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{typ}, uint32(4+len(body)))
	return append(b, body...)
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestBadStartup(t *testing.T) {
	cases := []struct {
		name      string
		send      []byte
		halfClose bool // the client stops sending (EOF) after send
		wantFatal bool // a FATAL ErrorResponse must come before the close
	}{
		{name: "http-request", send: []byte("GET / HTTP/1.1\r\nHost: baton\r\n\r\n")},
		{name: "truncated-startup", send: startupPacket(3<<16, startupParams("user", "app", "database", "app"))[:14], halfClose: true},
		{name: "oversized-length", send: binary.BigEndian.AppendUint32(nil, 1<<20)},
		{name: "negative-length", send: []byte{0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0}},
		{name: "length-below-8", send: []byte{0, 0, 0, 4}},
		{name: "protocol-2", send: startupPacket(2<<16, startupParams("user", "app")), wantFatal: true},
		{name: "no-user", send: startupPacket(3<<16, startupParams("database", "app")), wantFatal: true},
		{name: "unterminated-params", send: startupPacket(3<<16, []byte("user\x00app")), wantFatal: true},
		{name: "cancel-unknown-key", send: startupPacket(80877102, []byte{0, 0, 0, 1, 1, 2, 3, 4})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, batonAddr())
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.halfClose {
				c.(*net.TCPConn).CloseWrite()
			}
			r := readUntilClosed(c, nil, 3*time.Second)
			if !r.closed || r.after > 2*time.Second {
				t.Fatalf("baton kept the connection open (%v after %v)", r.readErr, r.after)
			}
			if len(r.other) > 0 || len(r.errors) > 1 {
				t.Fatalf("unexpected answer: errors %+v, other %v", r.errors, r.other)
			}
			if tc.wantFatal && (len(r.errors) != 1 || r.errors[0].Severity != "FATAL") {
				t.Fatalf("want a FATAL error before the close; got %+v", r.errors)
			}
			if len(r.errors) == 1 && r.errors[0].Severity != "FATAL" {
				t.Fatalf("error severity %q; want FATAL", r.errors[0].Severity)
			}
			assertServes(t, url)
		})
	}
}

func TestBadMessageAfterLogin(t *testing.T) {
	cases := []struct {
		name string
		send []byte
	}{
		{"unknown-type", frame('z', nil)},
		{"zero-type", frame(0, []byte("junk"))},
		{"negative-length", []byte{'Q', 0xff, 0xff, 0xff, 0xff}},
		{"length-below-4", []byte{'Q', 0, 0, 0, 2}},
		{"query-without-terminator", frame('Q', []byte("SELECT 1"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc := rawLogin(t, url)
			if _, err := hc.Conn.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			r := readUntilClosed(hc.Conn, hc.Frontend, 3*time.Second)
			wantFatalThenClose(t, tc.name, r, "08P01")
			assertServes(t, url)
		})
	}
}

func TestOversizedMessage(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(c *topology.Cluster) { c.Limits.MaxMessageSize = 4096 })
	u := b.URL(pg)

	// Below the limit a query works.
	c := connectURL(t, u)
	var s string
	if err := c.QueryRow(ctxT(t), "SELECT '"+strings.Repeat("a", 3000)+"'::text").Scan(&s); err != nil || len(s) != 3000 {
		t.Fatalf("a 3 KB query under a 4 KiB limit: %v", err)
	}

	hc := rawLogin(t, u)
	big := frame('Q', append([]byte("SELECT '"+strings.Repeat("x", 8<<10)+"'"), 0))
	if _, err := hc.Conn.Write(big); err != nil {
		t.Fatal(err)
	}
	r := readUntilClosed(hc.Conn, hc.Frontend, 3*time.Second)
	wantFatalThenClose(t, "an 8 KiB query over a 4 KiB limit", r, "08P01")
	assertServes(t, u)
}

func TestStartupTimeout(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(c *topology.Cluster) {
		c.Limits.StartupTimeout = topology.Duration(500 * time.Millisecond)
	})
	u := b.URL(pg)
	addr := b.Inst.Clusters()[0].Addr().String()
	assertServes(t, u)
	cases := []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"half-a-startup-packet", startupPacket(3<<16, startupParams("user", "app", "database", "app"))[:12]},
		{"startup-without-password", startupPacket(3<<16, startupParams("user", "app", "database", "app"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			r := readUntilClosed(c, nil, 4*time.Second)
			if !r.closed || r.after > 2*time.Second {
				t.Fatalf("a client that never finished the startup was still connected after %v (%v)", r.after, r.readErr)
			}
			assertServes(t, u)
		})
	}
}

func TestWrongPassword(t *testing.T) {
	metrics := baton.Inst.Clusters()[0].PG.Metrics()
	cases := []struct{ name, user, password string }{
		{"wrong-password", pg.Opts.AppUser, "not-" + pg.Opts.AppPassword},
		{"empty-password", pg.Opts.AppUser, ""},
		{"unknown-user", uniqueName("nobody"), "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			cfg.User, cfg.Password = tc.user, tc.password
			before := metrics.AuthFailures()
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err == nil {
				c.Close(ctx)
				t.Fatal("login succeeded")
			}
			if sqlState(err) != "28P01" {
				t.Fatalf("login error %v; want SQLSTATE 28P01", err)
			}
			// baton counts the failure after it sent the error: wait for it.
			cluster.Eventually(t, 2*time.Second, "AuthFailures grows", func() (bool, error) {
				return metrics.AuthFailures() > before, nil
			})
			assertServes(t, url)
		})
	}
}
