package clients

import "testing"

func TestNormalize(t *testing.T) {
	tg := target{port: 20003}
	for _, c := range []struct{ in, want string }{
		{`connection to server at "127.0.0.1", port 20003 failed`, `connection to server at "127.0.0.1", port <port> failed`},
		{"dial tcp 127.0.0.1:20003: connect: connection refused", "dial tcp 127.0.0.1:<port>: connect: connection refused"},
		{"host=127.0.0.1 port=20003", "host=127.0.0.1 port=<port>"},
		{"20003|200070006", "20003|200070006"}, // data, not a port
		{"port 200031", "port 200031"},         // another number
		{"error (conn=1080711) Duplicate", "error (conn=<id>) Duplicate"},
	} {
		if got := normalize(c.in, tg); got != c.want {
			t.Errorf("normalize(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestDiff(t *testing.T) {
	got := diff("a\nb\nc", "a\nx\nc")
	want := "  a\n+ x\n- b\n  c\n"
	if got != want {
		t.Errorf("diff = %q; want %q", got, want)
	}
}
