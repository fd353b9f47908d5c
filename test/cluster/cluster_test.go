package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v (last error: %v)", what, timeout, last)
		}
		time.Sleep(pollInterval)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryOne[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestStartPG(t *testing.T) {
	began := time.Now()
	c := StartPGForTest(t, PGOptions{})
	t.Logf("StartPG took %v", time.Since(began))
	if len(c.Replicas) != 2 || len(c.Nodes()) != 3 || c.Nodes()[0] != c.Primary {
		t.Fatalf("want a primary and 2 replicas, primary first; got %d nodes", len(c.Nodes()))
	}

	// Every node is itself, in the right role.
	for _, n := range c.Nodes() {
		conn := connect(t, n.SuperURL())
		if port := queryOne[int32](t, conn, "SELECT inet_server_port()"); int(port) != n.Port {
			t.Errorf("%s: inet_server_port() = %d, want %d", n.Name, port, n.Port)
		}
		want := n != c.Primary
		if got := queryOne[bool](t, conn, "SELECT pg_is_in_recovery()"); got != want {
			t.Errorf("%s: pg_is_in_recovery() = %v, want %v", n.Name, got, want)
		}
	}

	// The application role owns its database: tables and temp tables.
	app := connect(t, c.Primary.AppURL())
	if queryOne[bool](t, app, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") {
		t.Errorf("app user is a superuser")
	}
	for _, q := range []string{
		"CREATE TABLE items (id int PRIMARY KEY, name text)",
		"CREATE TEMP TABLE scratch (x int)",
		"INSERT INTO scratch VALUES (1)",
		"INSERT INTO items VALUES (1, 'replicated')",
	} {
		if _, err := app.Exec(t.Context(), q); err != nil {
			t.Fatalf("as app user: %s: %v", q, err)
		}
	}

	// The row reaches both replicas, which stay read-only.
	for _, r := range c.Replicas {
		conn := connect(t, r.AppURL())
		eventually(t, 10*time.Second, r.Name+" sees the row", func() (bool, error) {
			var name string
			err := conn.QueryRow(t.Context(), "SELECT name FROM items WHERE id = 1").Scan(&name)
			return err == nil && name == "replicated", err
		})
		if _, err := conn.Exec(t.Context(), "INSERT INTO items VALUES (2, 'x')"); err == nil {
			t.Errorf("%s accepted a write", r.Name)
		}
	}

	// Stop ends every server process, frees the ports, removes BaseDir.
	var pids []int
	for _, n := range c.Nodes() {
		pids = append(pids, n.PID())
		pids = append(pids, childPIDs(n.PID())...)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for _, pid := range pids {
		if !pidGone(pid) {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
	for _, n := range c.Nodes() {
		if n.Running() {
			t.Errorf("%s still running", n.Name)
		}
		if !portFree(n.Port) {
			t.Errorf("%s: port %d still in use", n.Name, n.Port)
		}
	}
	if _, err := os.Stat(c.BaseDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("BaseDir %s not removed: %v", c.BaseDir, err)
	}
}

func TestKillAndRestart(t *testing.T) {
	want, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := StartPGForTest(t, PGOptions{Replicas: 1, Ports: []int{want}, AppDB: "shop"})
	if c.Primary.Port != want {
		t.Errorf("primary port = %d, want the preferred %d", c.Primary.Port, want)
	}
	r := c.Replicas[0]

	for _, n := range []*PGNode{r, c.Primary} {
		pid := n.PID()
		kids := childPIDs(pid)
		if err := n.Kill(); err != nil {
			t.Fatalf("Kill %s: %v", n.Name, err)
		}
		if n.Running() || !pidGone(pid) {
			t.Fatalf("%s: postmaster %d survived Kill", n.Name, pid)
		}
		for _, k := range kids {
			if !pidGone(k) {
				t.Errorf("%s: backend %d survived Kill", n.Name, k)
			}
		}
		if err := n.Start(t.Context()); err != nil {
			t.Fatalf("restart %s after Kill: %v", n.Name, err)
		}
		if err := n.Start(t.Context()); err == nil {
			t.Errorf("second Start of %s succeeded", n.Name)
		}
	}

	// After both crashes the replica streams again and keeps up.
	p := connect(t, c.Primary.SuperURL())
	if _, err := p.Exec(t.Context(), "CREATE TABLE after_crash AS SELECT 42 AS v"); err != nil {
		t.Fatal(err)
	}
	rc := connect(t, r.SuperURL())
	eventually(t, 20*time.Second, "replica catches up after crashes", func() (bool, error) {
		var v int32
		err := rc.QueryRow(t.Context(), "SELECT v FROM after_crash").Scan(&v)
		return err == nil && v == 42, err
	})

	// A port taken while the node is down makes Start fail cleanly.
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", r.Addr())
	if err != nil {
		t.Fatalf("occupy %s: %v", r.Addr(), err)
	}
	err = r.Start(t.Context())
	l.Close()
	if !errors.Is(err, ErrPortInUse) || r.Running() {
		t.Fatalf("Start on a taken port: err %v, running %v; want ErrPortInUse", err, r.Running())
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("Start after the port was freed: %v", err)
	}

	// Stop then Start keeps the node usable.
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("Stop of a stopped node: %v", err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestHelpers(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"confQuote", confQuote(`/a b/it's\x`), `'/a b/it''s\\x'`},
		{"connQuote", connQuote(`p w'\`), `'p w\'\\'`},
		{"sqlLiteral", sqlLiteral("it's"), `'it''s'`},
		{"sqlIdent", sqlIdent(`a"b`), `"a""b"`},
		{"newest bin dir", fmt.Sprint(versionLess("/x/9.6/bin", "/x/15/bin"),
			versionLess("/x/15/bin", "/x/9.6/bin")), "true false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
	o := PGOptions{}.withDefaults()
	if o.Replicas != 2 || o.Password != "postgres" || o.AppUser != "app" || o.AppDB != "app" {
		t.Errorf("defaults: %+v", o)
	}
	if o := (PGOptions{Replicas: -1}).withDefaults(); o.Replicas != 0 {
		t.Errorf("Replicas -1 became %d, want 0", o.Replicas)
	}
}
