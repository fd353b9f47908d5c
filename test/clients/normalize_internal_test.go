package clients

import (
	"strings"
	"testing"
)

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

// A missing client fails its test with the package to install (runClient calls need first).
func TestMissingClientNamesPackage(t *testing.T) {
	for _, c := range []struct {
		need func() error
		pkg  string
	}{
		{needCmd("baton-no-such-client", "baton-no-such-package"), "apt-get install -y baton-no-such-package"},
		{needPython("baton_no_such_module", "python3-baton-no-such"), "python3-baton-no-such"},
		{needJava("PgJdbc", "/nonexistent/driver.jar", "libbaton-no-such-java"), "apt-get install -y libbaton-no-such-java"},
	} {
		err := c.need()
		if err == nil || !strings.Contains(err.Error(), c.pkg) {
			t.Errorf("need() = %v; want an error naming %q", err, c.pkg)
		}
	}
}
