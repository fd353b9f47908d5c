package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// TestDemo runs `baton demo` as a newcomer would: it becomes ready without a single warning,
// serves reads from a replica and writes on the primary through baton, lets
// configs/postgres.yaml and configs/mysql.yaml join it as further instances (as those files
// say), each serving a read from a replica and a write on the primary, and stops everything on
// SIGTERM, still without a warning.
func TestDemo(t *testing.T) {
	cluster.RequirePG(t)
	cluster.RequireMariaDB(t)
	bin := filepath.Join(t.TempDir(), "baton")
	// No VCS stamp: git refuses a checkout another user owns (CI volumes), and the test needs none.
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	// The demo's own listeners on free ports (a developer's `make demo` may hold 6432 and 3306);
	// its clusters and etcd where configs/*.yaml expect them.
	demo := startProcess(t, "demo", bin, "demo", "--ready-file", ready, "--config", "../../configs/both.yaml",
		"--listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	var rd demoReady
	demo.await(t, 2*time.Minute, "the demo writes its ready file", func() (bool, error) {
		b, err := os.ReadFile(ready)
		if err != nil {
			return false, err
		}
		return json.Unmarshal(b, &rd) == nil && rd.Postgres != nil, nil
	})
	if len(rd.Postgres.Replicas) != 2 || rd.Postgres.Primary == "" || rd.MySQL == nil || len(rd.MySQL.Replicas) != 2 || rd.Admin == "" {
		t.Fatalf("ready file: %+v %+v admin %q", rd.Postgres, rd.MySQL, rd.Admin)
	}
	// A correctly set-up deployment starts quietly: the demo's monitor user has its grants.
	if w := warnings(demo.output()); len(w) > 0 {
		t.Errorf("the demo's start-up logged warnings or errors:\n%s", strings.Join(w, "\n"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	my, err := sql.Open("mysql", rd.MySQL.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	var port int
	if err := my.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
		t.Fatalf("a MySQL read through the demo: %v", err)
	}
	if !slices.Contains(dsnPorts(t, rd.MySQL.Replicas...), port) {
		t.Fatalf("a MySQL read through the demo was answered by port %d, not a replica (%v)", port, rd.MySQL.Replicas)
	}
	demoDBUserLogins(t, ctx, rd) // users from the database (demo_authquery_test.go)
	c, err := pgx.Connect(ctx, rd.Postgres.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	var rep bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rep); err != nil || !rep {
		t.Fatalf("a read through the demo: replica=%v, %v", rep, err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE demo_t (x int)"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "INSERT INTO demo_t VALUES (1) RETURNING pg_is_in_recovery()").Scan(&rep); err != nil || rep {
		t.Fatalf("a write through the demo: replica=%v, %v", rep, err)
	}
	// For configs/postgres.yaml: a function of the application's own to find in the catalog, and
	// a table to write to.
	for _, q := range []string{
		"CREATE FUNCTION demo_double(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2'",
		"CREATE TABLE configs_pg (port int)",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	demoBackendsEncrypted(t, ctx, c, my, demo.output()) // demo_tls_test.go
	c.Close(ctx)

	t.Run("configs/postgres.yaml", func(t *testing.T) {
		joinDemo(t, bin, rd, "../../configs/postgres.yaml", pgReadWrite)
	})
	t.Run("configs/mysql.yaml", func(t *testing.T) {
		joinDemo(t, bin, rd, "../../configs/mysql.yaml", myReadWrite)
	})

	demo.stop(t, 30*time.Second)
	if w := warnings(demo.output()); len(w) > 0 {
		t.Errorf("the demo logged warnings or errors:\n%s", strings.Join(w, "\n"))
	}
	if _, err := os.Stat(ready); !os.IsNotExist(err) {
		t.Fatalf("ready file left behind: %v", err)
	}
	if _, err := pgx.Connect(context.Background(), rd.Postgres.Primary); err == nil {
		t.Fatal("the demo's primary still accepts connections after the demo stopped")
	}
}

// joinDemo starts `baton serve --config path` beside the running demo, as the file's comment
// says, and checks that it joins the demo's etcd and clusters, serves a read from a replica and
// a write on the primary (readWrite), logs no warning, and stops on SIGTERM.
func joinDemo(t *testing.T, bin string, rd demoReady, path string, readWrite func(*testing.T, *topology.Cluster, *demoEngine)) {
	cfg, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clusters) != 1 {
		t.Fatalf("%s: %d clusters, want 1", path, len(cfg.Clusters))
	}
	cl := cfg.Clusters[0]
	demoCl := rd.Postgres
	if cl.Engine == topology.EngineMySQL {
		demoCl = rd.MySQL
	}
	// The file names the demo's servers and etcd by fixed addresses: the demo must be there
	// (it moves to a free port only when one is taken, and then the file cannot join it).
	var nodes []int
	for _, n := range cl.Nodes {
		nodes = append(nodes, addrPort(t, n.Address))
	}
	demoNodes := dsnPorts(t, append([]string{demoCl.Primary}, demoCl.Replicas...)...)
	if !slices.Equal(nodes, demoNodes) {
		t.Fatalf("%s names the nodes on ports %v, the demo's %s cluster runs on %v (was a port taken?)", path, nodes, cl.Engine, demoNodes)
	}
	for _, e := range cfg.Etcd.Endpoints {
		if !slices.Contains(rd.Etcd, e) {
			t.Fatalf("%s joins etcd %s, the demo's is %v (was 2379 taken?)", path, e, rd.Etcd)
		}
	}

	inst := startProcess(t, filepath.Base(path), bin, "serve", "--config", path)
	adminURL := "http://" + cfg.Admin.Listen
	inst.await(t, time.Minute, "the instance is ready", func() (bool, error) {
		resp, err := http.Get(adminURL + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("/readyz: %s", resp.Status)
	})
	// One shared view: the instance follows the state the demo's coordinator published, and
	// sees both replicas readable before it is asked to read from one.
	want := clusterStatus(t, rd.Admin, cl.Name)
	if want.Coordinator == "" || want.Epoch == 0 {
		t.Fatalf("the demo has no coordinator for %s: %+v", cl.Name, want)
	}
	inst.await(t, 30*time.Second, "the instance shares the demo's cluster state, both replicas readable", func() (bool, error) {
		got := clusterStatus(t, adminURL, cl.Name)
		return got.Coordinator == want.Coordinator && got.Epoch == want.Epoch && got.Primary == want.Primary &&
				got.ReadableReplicas == 2,
			fmt.Errorf("coordinator %q epoch %d primary %q readable %d; the demo's: coordinator %q epoch %d primary %q",
				got.Coordinator, got.Epoch, got.Primary, got.ReadableReplicas, want.Coordinator, want.Epoch, want.Primary)
	})

	readWrite(t, cl, demoCl)

	inst.stop(t, 30*time.Second)
	if w := warnings(inst.output()); len(w) > 0 {
		t.Errorf("%s logged warnings or errors:\n%s", path, strings.Join(w, "\n"))
	}
}

// pgReadWrite reads and writes through a PostgreSQL listener of cl: the read must be answered
// by a replica, the write by the primary, where it is then found.
func pgReadWrite(t *testing.T, cl *topology.Cluster, demo *demoEngine) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := cl.Users[0]
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", u.Name, u.Password.Reveal(), cl.Listen, cl.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var port int
	var replica bool
	if err := c.QueryRow(ctx, "SELECT inet_server_port(), pg_is_in_recovery()").Scan(&port, &replica); err != nil {
		t.Fatalf("read through %s: %v", cl.Listen, err)
	}
	if !replica || !slices.Contains(dsnPorts(t, demo.Replicas...), port) {
		t.Fatalf("a read through %s was answered by port %d (in recovery: %v), not a replica %v", cl.Listen, port, replica, demo.Replicas)
	}
	// The instance reads function volatility from the file's database: a read calling the
	// application's immutable function goes to a replica once the catalog is loaded (and the
	// function has reached the replicas); until then it goes to the primary.
	cluster.Eventually(t, 30*time.Second, "a read calling demo_double() is answered by a replica", func() (bool, error) {
		var v int
		// The simple protocol: a statement pgx prepared before the catalog was loaded keeps the
		// route it was given then.
		err := c.QueryRow(ctx, "SELECT demo_double(21), inet_server_port(), pg_is_in_recovery()", pgx.QueryExecModeSimpleProtocol).Scan(&v, &port, &replica)
		return err == nil && v == 42 && replica, err
	})
	// DML only: DDL through the instance would start a catalog reload, and one that the stop
	// below cuts short is logged at WARN (KeepCatalog does not tell a shutdown from a failure).
	if _, err := c.Exec(ctx, "INSERT INTO configs_pg VALUES (inet_server_port())"); err != nil {
		t.Fatalf("write through %s: %v", cl.Listen, err)
	}
	p, err := pgx.Connect(ctx, demo.Primary)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	var wrote int
	if err := p.QueryRow(ctx, "SELECT port FROM configs_pg").Scan(&wrote); err != nil {
		t.Fatalf("the write through %s, on the primary: %v", cl.Listen, err)
	}
	if primary := dsnPorts(t, demo.Primary)[0]; wrote != primary {
		t.Fatalf("the write through %s ran on port %d, the primary is %d", cl.Listen, wrote, primary)
	}
}

// myReadWrite is pgReadWrite for a MySQL listener.
func myReadWrite(t *testing.T, cl *topology.Cluster, demo *demoEngine) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := cl.Users[0]
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s", u.Name, u.Password.Reveal(), cl.Listen, cl.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var port int
	if err := db.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
		t.Fatalf("read through %s: %v", cl.Listen, err)
	}
	if !slices.Contains(dsnPorts(t, demo.Replicas...), port) {
		t.Fatalf("a read through %s was answered by port %d, not a replica %v", cl.Listen, port, demo.Replicas)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE configs_my (port INT)"); err != nil {
		t.Fatalf("write through %s: %v", cl.Listen, err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO configs_my VALUES (@@port)"); err != nil {
		t.Fatalf("write through %s: %v", cl.Listen, err)
	}
	p := cluster.OpenMySQL(t, demo.Primary)
	var wrote int
	if err := p.QueryRowContext(ctx, "SELECT port FROM configs_my").Scan(&wrote); err != nil {
		t.Fatalf("the write through %s, on the primary: %v", cl.Listen, err)
	}
	if primary := dsnPorts(t, demo.Primary)[0]; wrote != primary {
		t.Fatalf("the write through %s ran on port %d, the primary is %d", cl.Listen, wrote, primary)
	}
}

// clusterStatus reads one cluster from an admin server's JSON API.
func clusterStatus(t *testing.T, adminURL, name string) admin.ClusterStatus {
	t.Helper()
	resp, err := http.Get(adminURL + "/api/v1/clusters/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cs admin.ClusterStatus
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&cs) != nil {
		t.Fatalf("%s/api/v1/clusters/%s: %s", adminURL, name, resp.Status)
	}
	return cs
}

// dsnHostPort finds the host:port in a postgres:// URL or a go-sql-driver DSN.
var dsnHostPort = regexp.MustCompile(`(?:@|\(|//)(127\.0\.0\.1:\d+)`)

// dsnPorts returns the ports of the demo's connection strings, in order.
func dsnPorts(t *testing.T, dsns ...string) []int {
	t.Helper()
	var ports []int
	for _, d := range dsns {
		m := dsnHostPort.FindStringSubmatch(d)
		if m == nil {
			t.Fatalf("no 127.0.0.1:port in %q", d)
		}
		ports = append(ports, addrPort(t, m[1]))
	}
	return ports
}

func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("bad address %q", addr)
	}
	return n
}

// warnings returns the log lines of level WARN or ERROR in out.
func warnings(out string) []string {
	var w []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			w = append(w, l)
		}
	}
	return w
}

// process is a baton process a test started; its output is kept, and logged when the test
// fails. It is killed at the end of the test if it still runs.
type process struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{} // closed when it has exited; err is then its exit status
	err  error
}

func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.output())
		}
	})
	return p
}

func (p *process) output() string { return p.out.String() }

// await is cluster.Eventually that fails at once when the process exits.
func (p *process) await(t *testing.T, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	cluster.Eventually(t, d, what, func() (bool, error) {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before %s", p.name, p.err, what)
		default:
		}
		return cond()
	})
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t *testing.T, d time.Duration) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s exit: %v", p.name, p.err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not stop within %v of SIGTERM", p.name, d)
	}
}

// syncBuffer is a strings.Builder that a process's output goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
