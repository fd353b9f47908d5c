package mytest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// cutter forwards TCP connections to a node and can cut them all at once (the node's side of
// every forwarded connection is closed, as when the server or the network drops it).
type cutter struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

// newCutter forwards a fresh loopback port to target until the test ends.
func newCutter(t testing.TB, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() {
		ln.Close()
		c.cut()
		c.wg.Wait()
	})
	return c
}

func (c *cutter) addr() string { return c.ln.Addr().String() }

func (c *cutter) accept() {
	defer c.wg.Done()
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		c.wg.Add(2)
		go func() { defer c.wg.Done(); io.Copy(out, in); out.Close() }()
		go func() { defer c.wg.Done(); io.Copy(in, out); in.Close() }()
	}
}

// cut closes every forwarded connection.
func (c *cutter) cut() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, cn := range conns {
		cn.Close()
	}
}

// cliAt runs the mariadb command-line client against addr (batch mode, options, then -e sql)
// as the app user, in the background; wait returns its stdout, stderr and exit code.
func cliAt(t *testing.T, addr string, args ...string) (wait func() (stdout, stderr string, code int)) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	// --skip-ssl: plaintext whether addr is baton (no tls section) or a node (which offers TLS),
	// so that a direct run is the same transport as one through baton.
	argv := []string{"--no-defaults", "--protocol=TCP", "-h", host, "-P", port, "--skip-ssl",
		"-u", my.Opts.AppUser, "-p" + my.Opts.AppPassword, "--batch", "--skip-column-names"}
	argv = append(argv, args[:len(args)-1]...)
	argv = append(argv, "-e", args[len(args)-1], my.Opts.AppDB)
	cmd := exec.CommandContext(ctx, mariadbCLI, argv...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("running %s: %v (install mariadb-client)", mariadbCLI, err)
	}
	return func() (string, string, int) {
		defer cancel()
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", mariadbCLI, err)
		}
		return o.String(), e.String(), code
	}
}
