package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
)

// Target names, in the order their rows are printed.
const (
	targetDirect = "direct"
	targetBaton  = "baton"
	// targetBatonEventual is baton with consistency: eventual, beside the default
	// read_your_writes, to show what the default costs.
	targetBatonEventual = "baton-eventual"
	// targetBatonSession is baton with pool_mode: session (targetBaton runs the default,
	// transaction).
	targetBatonSession = "baton-session"
	targetPgBouncer    = "pgbouncer"
	targetPgpool       = "pgpool"
	targetHAProxy      = "haproxy"
)

var allTargets = []string{targetDirect, targetBaton, targetBatonEventual, targetBatonSession, targetPgBouncer, targetPgpool, targetHAProxy}

// target is one endpoint that pgbench is pointed at.
type target struct {
	name      string
	port      int
	adminPort int    // baton's admin HTTP endpoint (metrics); 0 for the others
	child     *child // nil for the direct connection
	// unavailable is the table cell text when the target could not be
	// started ("not installed (…)" or "error: …"); empty when usable.
	unavailable string
}

// benchEnv is what every target needs to know about the PostgreSQL cluster.
type benchEnv struct {
	root     string // private temp dir; each target gets a subdirectory
	primary  int    // primary's port
	replicas []int  // replicas' ports
	logf     func(format string, args ...any)
}

// appConnString is the app user's connection string for a loopback port.
func appConnString(port int) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=app password=app dbname=app sslmode=disable connect_timeout=10", port)
}

// peer describes a third-party proxy: the binary, the Debian package that
// ships it, and how to configure and start it.
type peer struct {
	binary string
	pkg    string
	start  func(ctx context.Context, e *benchEnv, bin string, port int) (*child, error)
}

var peers = map[string]peer{
	targetPgBouncer: {binary: "pgbouncer", pkg: "pgbouncer", start: startPgBouncer},
	targetPgpool:    {binary: "pgpool", pkg: "pgpool2", start: startPgpool},
	targetHAProxy:   {binary: "haproxy", pkg: "haproxy", start: startHAProxy},
}

// startPeer starts a third-party proxy and waits until it serves logins.
// Failures are recorded in the target, never returned.
func startPeer(ctx context.Context, e *benchEnv, name string) *target {
	t := &target{name: name}
	p := peers[name]
	bin := findBinary(p.binary)
	if bin == "" {
		t.unavailable = fmt.Sprintf("not installed (apt-get install %s)", p.pkg)
		return t
	}
	port, err := cluster.FreePort()
	if err == nil {
		t.port = port
		t.child, err = p.start(ctx, e, bin, port)
	}
	if err == nil {
		if err = waitReady(ctx, t.child, appConnString(port), 60*time.Second); err != nil {
			t.child.stop()
			t.child = nil
		}
	}
	if err != nil {
		e.logf("%s: %v", name, err)
		t.unavailable = "error: " + firstLine(err.Error())
	}
	return t
}

// writeFiles creates dir/name for each entry, private to the owner.
func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startPgBouncer runs PgBouncer in transaction mode in front of the primary.
// PgBouncer refuses to run as root, so as root it is started with "-u
// postgres" and its directory is handed to that user. A plain-text password in
// the auth_file serves SCRAM both towards the client and towards PostgreSQL.
func startPgBouncer(_ context.Context, e *benchEnv, bin string, port int) (*child, error) {
	dir := filepath.Join(e.root, "pgbouncer")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`[databases]
app = host=127.0.0.1 port=%d dbname=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
max_client_conn = 20000
default_pool_size = 20
stats_users = app
ignore_startup_parameters = extra_float_digits
server_tls_sslmode = disable
log_connections = 0
log_disconnections = 0
`, e.primary, port, filepath.Join(dir, "userlist.txt"))
	files := map[string]string{"pgbouncer.ini": ini, "userlist.txt": `"app" "app"` + "\n"}
	if err := writeFiles(dir, files); err != nil {
		return nil, err
	}
	argv := []string{bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgbouncer refuses to run as root and there is no 'postgres' user to run it as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "userlist.txt")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, err
			}
		}
		argv = append(argv, "-u", u.Username)
	}
	argv = append(argv, filepath.Join(dir, "pgbouncer.ini"))
	// SIGTERM is an immediate shutdown in PgBouncer 1.18 (SIGINT waits for clients).
	return startChild("pgbouncer", filepath.Join(dir, "pgbouncer.log"), syscall.SIGTERM, argv)
}

// startPgpool runs pgpool-II in streaming-replication mode over all three
// nodes with load balancing on. The primary's weight is 0 so that, like
// baton, reads go to the replicas. pool_hba authenticates clients with SCRAM
// against plain-text ("TEXT" prefixed) pool_passwd entries, which pgpool
// also uses to log in to the backends; the superuser is the sr_check user
// that finds the primary at startup.
func startPgpool(_ context.Context, e *benchEnv, bin string, port int) (*child, error) {
	dir := filepath.Join(e.root, "pgpool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	pcpPort, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%[2]s'
pcp_listen_addresses = '127.0.0.1'
pcp_port = %d
pcp_socket_dir = '%[2]s'
wd_ipc_socket_dir = '%[2]s'
pid_file_name = '%[2]s/pgpool.pid'
logdir = '%[2]s'
log_destination = 'stderr'
logging_collector = off
num_init_children = 32
max_pool = 1
child_life_time = 0
connection_life_time = 0
client_idle_limit = 0
load_balance_mode = on
statement_level_load_balance = off
sr_check_period = 0
sr_check_user = 'postgres'
sr_check_password = 'postgres'
health_check_period = 0
failover_on_backend_error = off
memory_cache_enabled = off
use_watchdog = off
enable_pool_hba = on
pool_passwd = '%[2]s/pool_passwd'
ssl = off
`, port, dir, pcpPort)
	nodes := append([]int{e.primary}, e.replicas...)
	for i, p := range nodes {
		weight := 1
		if i == 0 {
			weight = 0
		}
		fmt.Fprintf(&b, "backend_hostname%d = '127.0.0.1'\n", i)
		fmt.Fprintf(&b, "backend_port%d = %d\n", i, p)
		fmt.Fprintf(&b, "backend_weight%d = %d\n", i, weight)
		fmt.Fprintf(&b, "backend_flag%d = 'DISALLOW_TO_FAILOVER'\n", i)
	}
	files := map[string]string{
		"pgpool.conf":   b.String(),
		"pool_hba.conf": "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
		"pool_passwd":   "app:TEXTapp\npostgres:TEXTpostgres\n",
		"pcp.conf":      "",
	}
	if err := writeFiles(dir, files); err != nil {
		return nil, err
	}
	argv := []string{bin, "-n",
		"-f", filepath.Join(dir, "pgpool.conf"),
		"-a", filepath.Join(dir, "pool_hba.conf"),
		"-F", filepath.Join(dir, "pcp.conf")}
	// SIGINT is pgpool's fast shutdown; SIGTERM waits for clients.
	return startChild("pgpool", filepath.Join(dir, "pgpool.log"), syscall.SIGINT, argv)
}

// startHAProxy runs HAProxy as a plain TCP forwarder to the primary.
// maxconn stays modest: HAProxy needs two descriptors per connection and
// refuses to start when it cannot raise RLIMIT_NOFILE to cover maxconn
// (the hard limit may be as low as 20000, even for root).
func startHAProxy(_ context.Context, e *benchEnv, bin string, port int) (*child, error) {
	dir := filepath.Join(e.root, "haproxy")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`global
    maxconn 8000

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

listen pg
    bind 127.0.0.1:%d
    server primary 127.0.0.1:%d
`, port, e.primary)
	if err := writeFiles(dir, map[string]string{"haproxy.cfg": cfg}); err != nil {
		return nil, err
	}
	argv := []string{bin, "-db", "-f", filepath.Join(dir, "haproxy.cfg")}
	return startChild("haproxy", filepath.Join(dir, "haproxy.log"), syscall.SIGTERM, argv)
}

// firstLine shortens a multi-line error to fit a table cell.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}
