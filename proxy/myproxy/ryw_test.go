package myproxy

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
)

func TestIsGTIDSetText(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"", true},
		{"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", true},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11,\n2174b383-5441-11e8-b90a-c80aa9429562:tag_1:1-3", true},
		{"x:1'); DROP TABLE t; --", false},
		{`a\`, false},
	}
	for _, tt := range tests {
		if got := isGTIDSetText(tt.v); got != tt.want {
			t.Errorf("isGTIDSetText(%q) = %v; want %v", tt.v, got, tt.want)
		}
	}
}

// fakeAnswer is a scripted server's answer to one command: packet payloads, in order.
type fakeAnswer [][]byte

// oneValue is a text result set of one column and one row, value v (nil: NULL).
func oneValue(caps uint32, v []byte) fakeAnswer {
	col := []byte{3, 'd', 'e', 'f', 0, 0, 0, 1, 'v', 0, 0x0c, 0x21, 0, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0}
	row := []byte{0xfb}
	if v != nil {
		row = mywire.AppendLenEncString(nil, string(v))
	}
	end := mywire.OK{Status: mywire.StatusAutocommit}
	a := fakeAnswer{{1}, col}
	if caps&mywire.ClientDeprecateEOF == 0 {
		a = append(a, []byte{0xfe, 0, 0, 2, 0})
		return append(a, row, []byte{0xfe, 0, 0, 2, 0})
	}
	okEOF := mywire.AppendOKAsEOF(nil, 0, end, caps)[4:]
	return append(a, row, okEOF)
}

// fakeBackend returns a backend whose server reads one command and writes answer.
func fakeBackend(t *testing.T, caps uint32, answer fakeAnswer) (*backend, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the client connection closed
	got := make(chan string, 1)
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := mywire.NewPacketReader(bufio.NewReader(c), 1<<20)
		p, _, err := r.Next()
		if err != nil {
			return
		}
		got <- string(p[1:])
		var out []byte
		seq := byte(1)
		for _, a := range answer {
			out, seq = mywire.AppendPacket(out, seq, a)
		}
		c.Write(out)
		// Hold the connection open until the client closes it.
		c.Read(make([]byte, 1))
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cc := &mywire.ClientConn{Conn: c, R: mywire.NewPacketReader(bufio.NewReader(c), 1<<20), Caps: caps}
	return &backend{cc: cc, w: bufio.NewWriter(c)}, got
}

func TestQueryValue(t *testing.T) {
	base := mywire.ClientProtocol41 | mywire.ClientTransactions | mywire.ClientSecureConnection
	tests := []struct {
		name       string
		caps       uint32
		answer     func(caps uint32) fakeAnswer
		want       string
		wantNull   bool
		wantErr    bool
		wantBroken bool
	}{
		{"value with EOF", base, func(c uint32) fakeAnswer { return oneValue(c, []byte("0-1-42")) }, "0-1-42", false, false, false},
		{"value with DEPRECATE_EOF", base | mywire.ClientDeprecateEOF, func(c uint32) fakeAnswer { return oneValue(c, []byte("-1")) }, "-1", false, false, false},
		{"empty value", base, func(c uint32) fakeAnswer { return oneValue(c, []byte("")) }, "", false, false, false},
		{"NULL", base | mywire.ClientDeprecateEOF, func(c uint32) fakeAnswer { return oneValue(c, nil) }, "", true, false, false},
		{"server error keeps the connection", base, func(c uint32) fakeAnswer {
			return fakeAnswer{mywire.AppendERR(nil, 0, mywire.ERR{Code: 1305, State: "42000", Message: "FUNCTION x does not exist"}, c)[4:]}
		}, "", false, true, false},
		{"no row", base, func(c uint32) fakeAnswer {
			return fakeAnswer{{1}, oneValue(c, nil)[1], {0xfe, 0, 0, 2, 0}, {0xfe, 0, 0, 2, 0}}
		}, "", false, true, false},
		{"garbage breaks the connection", base, func(c uint32) fakeAnswer { return fakeAnswer{{0}} }, "", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be, got := fakeBackend(t, tt.caps, tt.answer(tt.caps))
			v, null, err := be.queryValue("SELECT @@last_gtid", 5*time.Second)
			if q := <-got; q != "SELECT @@last_gtid" {
				t.Fatalf("server got %q", q)
			}
			if v != tt.want || null != tt.wantNull || (err != nil) != tt.wantErr || be.broken != tt.wantBroken {
				t.Fatalf("queryValue = %q, null %v, err %v, broken %v; want %q, null %v, error %v, broken %v",
					v, null, err, be.broken, tt.want, tt.wantNull, tt.wantErr, tt.wantBroken)
			}
			var eq errQuery
			if tt.name == "server error keeps the connection" && !errors.As(err, &eq) {
				t.Fatalf("error %v is not an errQuery", err)
			}
		})
	}
}

func TestQueryValueTimeout(t *testing.T) {
	be, got := fakeBackend(t, mywire.ClientProtocol41, nil) // answers nothing
	start := time.Now()
	_, _, err := be.queryValue("SELECT MASTER_GTID_WAIT('0-1-1', 1)", 200*time.Millisecond)
	<-got
	if err == nil || !be.broken {
		t.Fatalf("err %v, broken %v; want a timeout that closes the connection", err, be.broken)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the timeout took %v", d)
	}
}
