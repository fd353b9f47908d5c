package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// myOpen opens a pool for dsn, closed when the test ends.
func myOpen(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse DSN %q: %v", dsn, err)
	}
	cfg.Logger = &mysql.NopLogger{} // killed servers make the pool log otherwise
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func myQueryOne[T any](t *testing.T, db *sql.DB, q string, args ...any) T {
	t.Helper()
	var v T
	if err := db.QueryRowContext(t.Context(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// myWaitCaughtUp waits at most 30 s for the replicas to catch up.
func myWaitCaughtUp(t *testing.T, c *MyCluster, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("WaitCaughtUp %s: %v", when, err)
	}
}

// myErrno returns the MariaDB error number of err, or 0.
func myErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func TestStartMariaDB(t *testing.T) {
	began := time.Now()
	c := StartMariaDBForTest(t, MyOptions{})
	t.Logf("StartMariaDB took %v", time.Since(began))
	if len(c.Replicas) != 2 || len(c.Nodes()) != 3 || c.Nodes()[0] != c.Primary {
		t.Fatalf("want a primary and 2 replicas, primary first; got %d nodes", len(c.Nodes()))
	}
	if got, want := c.Primary.AppDSN(), "app:app@tcp("+c.Primary.Addr()+")/app"; got != want {
		t.Errorf("AppDSN = %q, want %q", got, want)
	}
	if got, want := c.Primary.RootDSN(), "root:root@tcp("+c.Primary.Addr()+")/app"; got != want {
		t.Errorf("RootDSN = %q, want %q", got, want)
	}

	// Every node is itself, in the right role, and keeps binlogs.
	for _, n := range c.Nodes() {
		db := myOpen(t, n.RootDSN())
		if got := myQueryOne[int](t, db, "SELECT @@port"); got != n.Port {
			t.Errorf("%s: @@port = %d, want %d", n.Name, got, n.Port)
		}
		if got := myQueryOne[int](t, db, "SELECT @@server_id"); got != n.ServerID {
			t.Errorf("%s: @@server_id = %d, want %d", n.Name, got, n.ServerID)
		}
		want := 0
		if n != c.Primary {
			want = 1
		}
		if got := myQueryOne[int](t, db, "SELECT @@read_only"); got != want {
			t.Errorf("%s: @@read_only = %d, want %d", n.Name, got, want)
		}
		if got := myQueryOne[int](t, db, "SELECT @@log_bin + @@log_slave_updates + @@gtid_strict_mode"); got != 3 {
			t.Errorf("%s: log_bin, log_slave_updates and gtid_strict_mode not all on", n.Name)
		}
	}

	// The application user writes, also temporary tables, and holds no
	// global privilege.
	app := myOpen(t, c.Primary.AppDSN())
	conn, err := app.Conn(t.Context()) // temporary tables live in one session
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50))",
		"CREATE TEMPORARY TABLE scratch (x INT)",
		"INSERT INTO scratch VALUES (1)",
		"INSERT INTO items VALUES (1, 'replicated')",
	} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("as app user: %s: %v", q, err)
		}
	}
	if _, err := conn.ExecContext(t.Context(), "SET GLOBAL read_only = 1"); myErrno(err) != 1227 {
		t.Errorf("app user SET GLOBAL read_only: err %v, want error 1227 (access denied)", err)
	}
	myWaitCaughtUp(t, c, "after the first writes")

	// The row reaches both replicas, which refuse the application's writes.
	for _, r := range c.Replicas {
		db := myOpen(t, r.AppDSN())
		eventually(t, 10*time.Second, r.Name+" sees the row", func() (bool, error) {
			var name string
			err := db.QueryRowContext(t.Context(), "SELECT name FROM items WHERE id = 1").Scan(&name)
			return err == nil && name == "replicated", err
		})
		_, err := db.ExecContext(t.Context(), "INSERT INTO items VALUES (2, 'x')")
		if myErrno(err) != 1290 {
			t.Errorf("%s: write as app: err %v, want error 1290 (read-only)", r.Name, err)
		}
	}

	// A crashed primary comes back and the replicas reconnect to it.
	if err := c.Primary.Kill(); err != nil {
		t.Fatalf("Kill primary: %v", err)
	}
	if c.Primary.Running() {
		t.Fatal("primary still running after Kill")
	}
	restarted := time.Now()
	if err := c.Primary.Start(t.Context()); err != nil {
		t.Fatalf("restart primary: %v", err)
	}
	t.Logf("primary restarted after SIGKILL in %v", time.Since(restarted))
	if err := c.Primary.Start(t.Context()); err == nil {
		t.Errorf("second Start of the primary succeeded")
	}
	if _, err := app.ExecContext(t.Context(), "INSERT INTO items VALUES (3, 'after crash')"); err != nil {
		t.Fatalf("write after the primary's restart: %v", err)
	}
	for _, r := range c.Replicas {
		db := myOpen(t, r.RootDSN())
		eventually(t, 20*time.Second, r.Name+" reconnects", func() (bool, error) {
			st, err := replicaStatus(t.Context(), db)
			return err == nil && st.IORunning == "Yes" && st.SQLRunning == "Yes", err
		})
	}
	myWaitCaughtUp(t, c, "after the primary's restart")
	for _, r := range c.Replicas {
		if got := myQueryOne[string](t, myOpen(t, r.AppDSN()), "SELECT name FROM items WHERE id = 3"); got != "after crash" {
			t.Errorf("%s: row 3 = %q", r.Name, got)
		}
	}

	// Stop ends every server process, frees the ports, removes BaseDir.
	var pids []int
	for _, n := range c.Nodes() {
		pids = append(pids, n.PID())
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for _, pid := range pids {
		if pid == 0 || !pidGone(pid) {
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

func TestMariaDBNodeLifecycle(t *testing.T) {
	want, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := StartMariaDBForTest(t, MyOptions{Replicas: 1, Ports: []int{want}, AppDB: "shop"})
	if c.Primary.Port != want {
		t.Errorf("primary port = %d, want the preferred %d", c.Primary.Port, want)
	}
	r := c.Replicas[0]
	if r.ServerID != 2 || c.Primary.ServerID != 1 {
		t.Errorf("server ids %d, %d; want 1, 2", c.Primary.ServerID, r.ServerID)
	}

	// A crashed replica recovers and catches up.
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	p := myOpen(t, c.Primary.RootDSN())
	if _, err := p.ExecContext(t.Context(), "CREATE TABLE shop.t AS SELECT 42 AS v"); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("restart %s after Kill: %v", r.Name, err)
	}
	myWaitCaughtUp(t, c, "after the replica's crash")
	if got := myQueryOne[int](t, myOpen(t, r.AppDSN()), "SELECT v FROM t"); got != 42 {
		t.Errorf("replica has v = %d", got)
	}

	// A port taken while the node is down makes Start fail cleanly.
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("Stop of a stopped node: %v", err)
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
	myWaitCaughtUp(t, c, "after the replica's Stop and Start")
}

func TestMariaDBPrimaryAlone(t *testing.T) {
	dir := t.TempDir()
	c := StartMariaDBForTest(t, MyOptions{Replicas: -1, BaseDir: dir, RootPassword: `p'w\`,
		Settings: []string{"max_connections=77"}})
	if len(c.Replicas) != 0 || c.BaseDir != dir {
		t.Fatalf("replicas %d, BaseDir %s", len(c.Replicas), c.BaseDir)
	}
	db := myOpen(t, c.Primary.RootDSN())
	if got := myQueryOne[int](t, db, "SELECT @@max_connections"); got != 77 {
		t.Errorf("Settings not applied: max_connections = %d", got)
	}
	myWaitCaughtUp(t, c, "without replicas")
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Primary.DataDir); err != nil {
		t.Errorf("a given BaseDir must be kept: %v", err)
	}
	// The same BaseDir cannot host a second cluster.
	_, err := StartMariaDB(t.Context(), MyOptions{Replicas: -1, BaseDir: dir})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second cluster in the same BaseDir: err %v", err)
	}
}

func TestMariaDBHelpers(t *testing.T) {
	covers := []struct {
		name, have, want string
		ok, bad          bool
	}{
		{"both empty", "", "", true, false},
		{"nothing to wait for", "0-1-5", "", true, false},
		{"equal", "0-1-5", "0-1-5", true, false},
		{"behind", "0-1-4", "0-1-5", false, false},
		{"ahead, other server id", "0-2-9", "0-1-5", true, false},
		{"missing domain", "0-1-9", "0-1-5,1-3-1", false, false},
		{"several domains", "1-3-2, 0-1-9", "0-1-5,1-3-1", true, false},
		{"malformed", "0-1", "0-1-5", false, true},
	}
	for _, tt := range covers {
		t.Run("gtidCovers/"+tt.name, func(t *testing.T) {
			ok, err := gtidCovers(tt.have, tt.want)
			if ok != tt.ok || (err != nil) != tt.bad {
				t.Errorf("gtidCovers(%q, %q) = %v, %v", tt.have, tt.want, ok, err)
			}
		})
	}
	quotes := []struct{ name, got, want string }{
		{"myLiteral", myLiteral("it's\\\n"), `'it\'s\\\n'`},
		{"myIdent", myIdent("a`b"), "`a``b`"},
	}
	for _, tt := range quotes {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
	o := MyOptions{}.withDefaults()
	if o.Replicas != 2 || o.RootPassword != "root" || o.AppUser != "app" || o.AppPassword != "app" || o.AppDB != "app" {
		t.Errorf("defaults: %+v", o)
	}
	if o := (MyOptions{Replicas: -1}).withDefaults(); o.Replicas != 0 {
		t.Errorf("Replicas -1 became %d, want 0", o.Replicas)
	}
	if err := (MyOptions{AppUser: "repl"}).withDefaults().validate(); err == nil {
		t.Errorf("AppUser repl accepted")
	}
	if sql := myInitSQL(MyOptions{}.withDefaults()); strings.Contains(sql, myLabHosts) {
		t.Errorf("without a Lab, the accounts reach beyond loopback:\n%s", sql)
	}
	if sql := myInitSQL(MyOptions{Lab: &NetLab{}}.withDefaults()); !strings.Contains(sql, "GRANT ALL PRIVILEGES ON *.* TO 'root'@'10.%' WITH GRANT OPTION;") {
		t.Errorf("in a Lab, root is not granted from the lanes:\n%s", sql)
	}
	t.Setenv(EnvMariaDBBin, t.TempDir())
	if _, err := MariaDBBinDir(); !errors.Is(err, ErrNoMariaDB) || !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("empty %s: err %v, want ErrNoMariaDB with an install hint", EnvMariaDBBin, err)
	}
}

// TestMariaDBInNetns: a primary and a replica, each in a namespace of its own, replicate over lane
// 0 (the replica's source is the primary's lane 0 address); root reaches a node on every lane,
// with a certificate that names the lane address; a cut of the primary's lanes drops packets (a
// connect times out rather than being refused) and healing restores it; a killed node starts
// again in its namespace.
func TestMariaDBInNetns(t *testing.T) {
	RequireNetns(t)
	RequireMariaDB(t)
	lab, err := NewNetLab(2, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close) // after the cluster's own cleanup has stopped the nodes
	c := StartMariaDBForTest(t, MyOptions{Replicas: 1, Lab: lab})
	p, r := c.Primary, c.Replicas[0]
	if p.NS == nil || r.NS == nil || p.NS == r.NS {
		t.Fatalf("want a namespace per node, got %v and %v", p.NS, r.NS)
	}
	// The node's process id is mariadbd's (ip netns exec execs it): the chaos tests signal it.
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/comm"); err != nil || strings.TrimSpace(string(comm)) != "mariadbd" {
		t.Errorf("PID %d is %q (%v), want mariadbd", p.PID(), comm, err)
	}
	if want := net.JoinHostPort(p.NS.IP(0), strconv.Itoa(p.Port)); p.Addr() != want || p.LaneAddr(0) != want {
		t.Errorf("Addr %s, LaneAddr(0) %s, want %s", p.Addr(), p.LaneAddr(0), want)
	}

	// Replication between the namespaces, from the primary's lane 0 address.
	pdb := myOpen(t, p.RootDSN())
	if _, err := pdb.ExecContext(t.Context(), "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pdb.ExecContext(t.Context(), "INSERT INTO app.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	myWaitCaughtUp(t, c, "across namespaces")
	rdb := myOpen(t, r.RootDSN())
	if got := myQueryOne[int](t, rdb, "SELECT count(*) FROM app.t"); got != 1 {
		t.Errorf("replica has %d rows, want 1", got)
	}
	rows, err := rdb.QueryContext(t.Context(), "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	st, err := scanRow(rows)
	if err != nil {
		t.Fatal(err)
	}
	if st["Master_Host"] != p.NS.IP(0) {
		t.Errorf("replica's Master_Host %q, want the primary's lane 0 address %s", st["Master_Host"], p.NS.IP(0))
	}

	// Root and the application on lane 1, TLS verified against the lane address.
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.TLS.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("read the CA %s: %v", c.TLS.CAFile, err)
	}
	tlsName := "baton-netns-" + strconv.Itoa(lab.ID)
	if err := mysql.RegisterTLSConfig(tlsName, &tls.Config{RootCAs: pool, ServerName: p.NS.IP(1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mysql.DeregisterTLSConfig(tlsName) })
	for _, u := range [][2]string{{"root", c.Opts.RootPassword}, {c.Opts.AppUser, c.Opts.AppPassword}} {
		db := myOpen(t, u[0]+":"+u[1]+"@tcp("+p.LaneAddr(1)+")/app?tls="+tlsName)
		if got := myQueryOne[string](t, db, "SELECT CURRENT_USER()"); !strings.HasPrefix(got, u[0]+"@") {
			t.Errorf("on lane 1 as %s: CURRENT_USER() = %q", u[0], got)
		}
		if got := myQueryOne[string](t, db, "SELECT variable_value FROM information_schema.session_status WHERE variable_name = 'Ssl_cipher'"); got == "" {
			t.Errorf("on lane 1 as %s: no TLS", u[0])
		}
	}

	// A cut drops packets: the connect times out, it is not refused.
	if err := p.NS.Cut(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	conn, err := net.DialTimeout("tcp", p.Addr(), 500*time.Millisecond)
	if err == nil {
		conn.Close()
		t.Fatalf("connected to %s through a cut", p.Addr())
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(began) < 400*time.Millisecond {
		t.Fatalf("connect to a cut node: %v after %v (want a timeout, not an answer or a refusal)", err, time.Since(began))
	}
	if err := p.NS.Heal(); err != nil {
		t.Fatal(err)
	}
	if got := myQueryOne[int](t, pdb, "SELECT count(*) FROM app.t"); got != 1 {
		t.Errorf("after healing: %d rows, want 1", got)
	}

	// Kill and start again: in the namespace, with the same address, and the replica follows.
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pdb.ExecContext(t.Context(), "INSERT INTO app.t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	myWaitCaughtUp(t, c, "after the primary restarted")
	if got := myQueryOne[int](t, rdb, "SELECT count(*) FROM app.t"); got != 2 {
		t.Errorf("replica has %d rows after the restart, want 2", got)
	}
}

// scanRow reads the single row of rows into a map by column name.
func scanRow(rows *sql.Rows) (map[string]string, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, fmt.Errorf("no row (%v)", rows.Err())
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, rows.Err()
}
