package mytest

import (
	"net"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
)

// rawConn connects to addr as the app user with mywire (so that the packets are visible);
// cfg sets the capabilities wanted. The connection closes when the test ends.
func rawConn(t *testing.T, addr string, cfg mywire.ClientConfig) *mywire.ClientConn {
	t.Helper()
	c := dialTest(t, addr)
	cfg.User, cfg.Password, cfg.Database = my.Opts.AppUser, my.Opts.AppPassword, my.Opts.AppDB
	cc, err := mywire.Connect(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// rawQuery runs q on cc and returns the payloads of the answer (copies) and the tracker that
// followed it; an ERR answer fails the test.
func rawQuery(t *testing.T, cc *mywire.ClientConn, q string) ([][]byte, *mywire.Tracker) {
	t.Helper()
	if _, err := cc.Conn.Write(mywire.AppendQuery(nil, q)); err != nil {
		t.Fatal(err)
	}
	tr := mywire.NewTracker(mywire.ComQuery, cc.Caps)
	var out [][]byte
	for done := false; !done; {
		p, _, err := cc.R.Next()
		if err != nil {
			t.Fatal(err)
		}
		if done, err = tr.Feed(p); err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), p...))
	}
	if e := tr.Err(); e != nil {
		t.Fatalf("%s: %d %s", q, e.Code, e.Message)
	}
	return out, tr
}

// dialTest opens a TCP connection to addr with a 20-second deadline, closed when the test ends.
func dialTest(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}
