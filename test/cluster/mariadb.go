package cluster

// MariaDB clusters: a primary and N replicas replicating by GTID, each a
// mariadbd process owned by the calling Go process.
//
// The primary's data directory is created by mariadb-install-db, whose
// --extra-file sets the root password and creates the application
// database, AppUser and the replication user "repl" in bootstrap mode,
// where nothing is written to a binlog; the replicas start from copies of
// it. So all nodes hold the same accounts and an empty @@gtid_binlog_pos,
// and each replica simply follows the primary from the start with
// MASTER_USE_GTID=slave_pos. All nodes keep binlogs with log_slave_updates,
// so any replica can be promoted later.
//
// Everything a node needs is in <BaseDir>/<node>.cnf, started as
// `mariadbd --defaults-file=<node>.cnf`, so /etc/mysql and ~/.my.cnf never
// apply. The error log is <BaseDir>/<node>.log; the unix socket is
// <DataDir>/mysqld.sock. When the caller is root, mariadbd runs as root
// (--user=root); MariaDB, unlike PostgreSQL, allows that.
//
// With MyOptions.Lab each mariadbd runs in a network namespace of its own
// (ip netns exec, which execs: the process id stays mariadbd's) and binds
// 0.0.0.0 there; mariadb-install-db runs outside, it opens no socket.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvMariaDBBin names the environment variable that overrides the directory
// of mariadbd (and of mariadb-install-db, which may also sit in ../bin or
// ../scripts next to it). Its parent is passed as --basedir.
const EnvMariaDBBin = "BATON_MARIADB_BIN"

// MariaDBInstallHint tells a user how to make MariaDB available.
const MariaDBInstallHint = "install MariaDB 10.11 or newer (Debian/Ubuntu: apt-get install -y " +
	"mariadb-server mariadb-client, or test/scripts/deps.sh; macOS: brew install mariadb) or set " +
	EnvMariaDBBin + " to the directory holding mariadbd"

// ErrNoMariaDB reports that mariadbd or mariadb-install-db was not found.
var ErrNoMariaDB = errors.New("cluster: MariaDB server binaries not found")

// MyOptions configures StartMariaDB. The zero value starts a primary and two
// replicas in a fresh temporary directory.
type MyOptions struct {
	// Replicas is the number of replicas; 0 means 2. Use a negative value
	// for a primary alone.
	Replicas int
	// BaseDir holds one data directory, one option file (<node>.cnf) and one
	// error log (<node>.log) per node. Empty means a new os.MkdirTemp
	// directory, removed by Stop; a given BaseDir is created if needed and
	// kept.
	BaseDir string
	// Ports are the preferred ports: [primary, replica1, ...]. A missing,
	// zero or busy entry gets a free port.
	Ports []int
	// RootPassword is the password of root@127.0.0.1 and root@localhost;
	// default "root".
	RootPassword string
	// AppUser and AppPassword name an account with ALL on AppDB.* and no
	// global privilege (so read_only applies to it), as AppUser@'%',
	// @'127.0.0.1' and @'localhost'; defaults "app", "app", "app". The
	// replication account is always "repl"/"repl" with REPLICATION SLAVE.
	AppUser, AppPassword, AppDB string
	// AppMonitor grants AppUser SLAVE MONITOR ON *.*, what baton's monitor
	// user needs to run SHOW SLAVE STATUS (as the README recommends); it
	// does not exempt the account from read_only.
	AppMonitor bool
	// Settings are extra option file lines for [mysqld] on every node, such
	// as "max_connections=1000". They come last, so they win. They do not
	// reach mariadb-install-db: innodb_page_size cannot be changed here.
	Settings []string
	// Fast trades durability for speed (innodb_flush_log_at_trx_commit=2,
	// sync_binlog=0, no doublewrite, small buffer pool and redo log): for
	// tests.
	Fast bool
	// SemiSync enables MariaDB's built-in semi-synchronous replication on
	// every node, both sides (rpl_semi_sync_master_enabled and
	// rpl_semi_sync_slave_enabled), so that any replica can be promoted and
	// stay semi-synchronous. A commit waits up to 10 s for a replica's ack
	// (rpl_semi_sync_master_timeout=10000), then falls back to asynchronous;
	// a Settings line "rpl_semi_sync_master_timeout=N" overrides it. With
	// no semi-synchronous replica connected a node commits asynchronously
	// at once (rpl_semi_sync_master_wait_no_slave=OFF).
	SemiSync bool
	// Logf, if set, receives progress messages, possibly from several
	// goroutines at once.
	Logf func(format string, args ...any)
	// NoTLS starts every node without TLS; NoTLSNodes only the nodes named ("primary",
	// "replica1", …). The others run with ssl_cert/ssl_key for 127.0.0.1 and localhost (in a
	// Lab also every lane address) and ssl_ca the cluster's CA (MyCluster.TLS), so accounts
	// may REQUIRE X509.
	NoTLS      bool
	NoTLSNodes []string
	// Lab, if set, runs every node in a network namespace of its own in Lab (partition tests,
	// root only): a node listens on all its lane addresses (MyNode.Addr is its lane 0 address,
	// LaneAddr the others) and replicates over lane 0. root gets a second account, root@'10.%',
	// so that the host reaches the nodes through the lanes; AppUser and repl are @'%' anyway.
	// Without a Lab, root stays loopback-only.
	Lab *NetLab
}

// withDefaults fills in the documented defaults.
func (o MyOptions) withDefaults() MyOptions {
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.Replicas < 0 {
		o.Replicas = 0
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.RootPassword, "root")
	def(&o.AppUser, "app")
	def(&o.AppPassword, "app")
	def(&o.AppDB, "app")
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	o.Ports = append([]int(nil), o.Ports...)
	o.Settings = append([]string(nil), o.Settings...)
	o.NoTLSNodes = append([]string(nil), o.NoTLSNodes...)
	return o
}

// validate rejects options the generated SQL and option files cannot hold.
func (o MyOptions) validate() error {
	switch o.AppUser {
	case "root", myReplUser:
		return fmt.Errorf("cluster: AppUser %q is reserved", o.AppUser)
	}
	if strings.ContainsAny(o.AppDB, "/\x00") {
		return fmt.Errorf("cluster: AppDB %q may not contain '/' or NUL", o.AppDB)
	}
	for _, s := range o.Settings {
		if strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("cluster: setting %q spans several lines", s)
		}
	}
	return nil
}

// The replication account, on every node.
const (
	myReplUser     = "repl"
	myReplPassword = "repl"
)

// myFastSettings are the Fast options, for the servers and mariadb-install-db.
var myFastSettings = []string{
	"innodb_flush_log_at_trx_commit=2",
	"sync_binlog=0",
	"innodb_doublewrite=0",
	"innodb_buffer_pool_size=32M",
	"innodb_log_file_size=16M", // the default 96M file costs ~1 s per node to create
	"innodb_buffer_pool_load_at_startup=0",
	"innodb_buffer_pool_dump_at_shutdown=0",
}

// myBins are the programs StartMariaDB runs.
type myBins struct {
	server    string // mariadbd
	installDB string // mariadb-install-db
	baseDir   string // --basedir for both; "" for a packaged install
}

// MariaDBBinDir returns the directory of mariadbd: $BATON_MARIADB_BIN, else
// $PATH, /usr/sbin, /usr/bin. mariadb-install-db must be found too. The
// error wraps [ErrNoMariaDB] and says how to install MariaDB.
func MariaDBBinDir() (string, error) {
	b, err := findMariaDB()
	if err != nil {
		return "", err
	}
	return filepath.Dir(b.server), nil
}

func findMariaDB() (myBins, error) {
	if d := os.Getenv(EnvMariaDBBin); d != "" {
		d, err := filepath.Abs(d)
		if err != nil {
			return myBins{}, fmt.Errorf("%w: %s: %v", ErrNoMariaDB, EnvMariaDBBin, err)
		}
		b := myBins{
			server: firstExecutable(filepath.Join(d, "mariadbd")),
			installDB: firstExecutable(filepath.Join(d, "mariadb-install-db"),
				filepath.Join(d, "..", "bin", "mariadb-install-db"),
				filepath.Join(d, "..", "scripts", "mariadb-install-db")),
			baseDir: filepath.Dir(d),
		}
		if b.server == "" || b.installDB == "" {
			return myBins{}, fmt.Errorf("%w: %s=%s holds no executable mariadbd, or no "+
				"mariadb-install-db was found in it, ../bin or ../scripts; %s",
				ErrNoMariaDB, EnvMariaDBBin, d, MariaDBInstallHint)
		}
		return b, nil
	}
	var b myBins
	b.server = lookExecutable("mariadbd", "/usr/sbin", "/usr/bin")
	if b.server != "" {
		b.installDB = firstExecutable(filepath.Join(filepath.Dir(b.server), "mariadb-install-db"))
	}
	if b.installDB == "" {
		b.installDB = lookExecutable("mariadb-install-db", "/usr/bin", "/usr/sbin")
	}
	switch {
	case b.server == "":
		return myBins{}, fmt.Errorf("%w: no mariadbd on $PATH, in /usr/sbin or /usr/bin; %s",
			ErrNoMariaDB, MariaDBInstallHint)
	case b.installDB == "":
		return myBins{}, fmt.Errorf("%w: mariadbd is %s, but mariadb-install-db was not found; %s",
			ErrNoMariaDB, b.server, MariaDBInstallHint)
	}
	return b, nil
}

// lookExecutable finds name on $PATH, else in dirs; "" if nowhere.
func lookExecutable(name string, dirs ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	paths := make([]string, len(dirs))
	for i, d := range dirs {
		paths[i] = filepath.Join(d, name)
	}
	return firstExecutable(paths...)
}

// firstExecutable returns the first path that is an executable file.
func firstExecutable(paths ...string) string {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
			return filepath.Clean(p)
		}
	}
	return ""
}

// command prepares a MariaDB program in its own process group, killed if
// the Go process dies, with the MYSQL*/MARIADB* variables of the caller
// removed (MYSQL_TCP_PORT, MYSQL_PWD, ... must not reach the tools) and
// MYSQLD_BOOTSTRAP naming the mariadbd that mariadb-install-db runs.
func (b myBins) command(ctx context.Context, dir, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if k := strings.ToUpper(kv); strings.HasPrefix(k, "MYSQL") || strings.HasPrefix(k, "MARIADB") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "MYSQLD_BOOTSTRAP="+b.server)
	cmd.SysProcAttr = sysProcAttr(nil)
	return cmd
}

// myNodeConf is the node's option file. Everything is in it, so that
// --defaults-file alone runs the node and keeps /etc/mysql and ~/.my.cnf
// out.
func myNodeConf(n *MyNode) string {
	o := n.c.Opts
	var b strings.Builder
	fmt.Fprintf(&b, "# written by baton test/cluster for node %s; rewritten by every Start\n[mysqld]\n", n.Name)
	if isRoot() {
		b.WriteString("user=root\n") // mariadbd refuses to run as root without it
	}
	if n.c.bins.baseDir != "" {
		fmt.Fprintf(&b, "basedir=%s\n", cnfQuote(n.c.bins.baseDir))
	}
	readOnly := "OFF"
	if n.replica {
		readOnly = "ON"
	}
	for _, l := range []string{
		"datadir=" + cnfQuote(n.DataDir),
		fmt.Sprintf("port=%d", n.Port),
		"bind_address=" + n.bindAddress(),
		"socket=" + cnfQuote(n.Socket()),
		"pid_file=" + cnfQuote(filepath.Join(n.DataDir, "mysqld.pid")),
		"tmpdir=" + cnfQuote(n.TmpDir()),
		"log_error=" + cnfQuote(n.LogPath()),
		fmt.Sprintf("server_id=%d", n.ServerID),
		"log_bin=mysql-bin",
		"relay_log=relay-bin", // the default name contains the host name
		"log_slave_updates=ON",
		"gtid_strict_mode=ON",
		"binlog_format=ROW",
		"skip_name_resolve=ON",
		"read_only=" + readOnly,
		"character_set_server=utf8mb4",
		"collation_server=utf8mb4_general_ci",
		"max_connections=300",
		"slave_net_timeout=10", // also sets the heartbeat period to 5 s
	} {
		b.WriteString(l + "\n")
	}
	if o.Fast {
		for _, l := range myFastSettings {
			b.WriteString(l + "\n")
		}
	}
	if t := n.c.TLS; t != nil && n.TLS {
		fmt.Fprintf(&b, "ssl_ca=%s\nssl_cert=%s\nssl_key=%s\n", cnfQuote(t.CAFile), cnfQuote(t.ServerCert), cnfQuote(t.ServerKey))
	}
	if o.SemiSync {
		// wait_no_slave OFF: a replica, whose master side has no semi-sync
		// clients, would otherwise stall its SQL thread for the whole
		// timeout on the first transaction it writes to its binlog.
		b.WriteString("rpl_semi_sync_master_enabled=ON\nrpl_semi_sync_slave_enabled=ON\n" +
			"rpl_semi_sync_master_timeout=10000\nrpl_semi_sync_master_wait_no_slave=OFF\n")
	}
	for _, l := range o.Settings {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// cnfQuote quotes an option file value. StartMariaDB rejects a BaseDir
// holding '"', '\' or a line break, which option files cannot carry
// through double quotes.
func cnfQuote(s string) string { return `"` + s + `"` }

// myInitSQL runs in mariadb-install-db's bootstrap, after the system
// tables: one statement per line. FLUSH PRIVILEGES loads the grant tables
// so that account statements work; root@<hostname>, which the bind address
// and skip_name_resolve make useless, is removed.
//
// In a Lab, root@'10.%' (the lanes' subnets) is added with root's password
// and privileges: the host's connections arrive from its lane addresses.
func myInitSQL(o MyOptions) string {
	acct := func(user, host string) string { return myLiteral(user) + "@" + myLiteral(host) }
	each := func(user string, hosts []string, suffix string) string {
		parts := make([]string, len(hosts))
		for i, h := range hosts {
			parts[i] = acct(user, h) + suffix
		}
		return strings.Join(parts, ", ")
	}
	local := []string{"localhost", "127.0.0.1", "::1"}
	app := []string{"%", "127.0.0.1", "localhost"}
	lines := []string{
		"FLUSH PRIVILEGES;",
		"DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');",
		"DELETE FROM mysql.proxies_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');",
		"FLUSH PRIVILEGES;",
		"ALTER USER " + each("root", local, " IDENTIFIED BY "+myLiteral(o.RootPassword)) + ";",
		"CREATE DATABASE " + myIdent(o.AppDB) + " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;",
		"CREATE USER " + each(o.AppUser, app, " IDENTIFIED BY "+myLiteral(o.AppPassword)) + ";",
		"GRANT ALL PRIVILEGES ON " + myIdent(o.AppDB) + ".* TO " + each(o.AppUser, app, "") + ";",
		"CREATE USER " + acct(myReplUser, "%") + " IDENTIFIED BY " + myLiteral(myReplPassword) + ";",
		"GRANT REPLICATION SLAVE ON *.* TO " + acct(myReplUser, "%") + ";",
	}
	if o.Lab != nil {
		lines = append(lines,
			"CREATE USER "+acct("root", myLabHosts)+" IDENTIFIED BY "+myLiteral(o.RootPassword)+";",
			"GRANT ALL PRIVILEGES ON *.* TO "+acct("root", myLabHosts)+" WITH GRANT OPTION;")
	}
	if o.AppMonitor {
		lines = append(lines, "GRANT SLAVE MONITOR ON *.* TO "+each(o.AppUser, app, "")+";")
	}
	return strings.Join(lines, "\n") + "\n"
}

// myLabHosts is the host pattern of root's account for a NetLab: every lane
// subnet is in 10.0.0.0/8.
const myLabHosts = "10.%"

// myLiteral quotes a MariaDB string literal (default sql_mode: backslash
// escapes). Line breaks are escaped too: bootstrap reads line by line.
func myLiteral(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\x00", `\0`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// myIdent quotes a MariaDB identifier.
func myIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// isRoot reports whether the caller is root: mariadbd and
// mariadb-install-db then need --user=root.
func isRoot() bool { return os.Geteuid() == 0 }

// MyCluster is a running MariaDB primary with its replicas. Its fields do
// not change after StartMariaDB returns; Stop may be called from any
// goroutine and more than once.
type MyCluster struct {
	Primary  *MyNode
	Replicas []*MyNode
	Opts     MyOptions // with defaults filled in
	BaseDir  string
	// TLS holds the cluster's CA and certificates (<BaseDir>/tls), also when no node uses
	// them; the client certificate's CN is Opts.AppUser.
	TLS *TLSFiles

	bins       myBins
	createdDir bool // BaseDir came from os.MkdirTemp: Stop removes it

	stopMu  sync.Mutex
	stopped bool
	stopErr error
}

// StartMariaDB creates and starts a primary and o.Replicas replicas, and
// returns once every replica runs both replication threads. On error
// nothing is left running and a temporary BaseDir is removed; once BaseDir
// exists, the error is a *StartError with the log tails. A given BaseDir
// must not hold the nodes of an earlier cluster.
func StartMariaDB(ctx context.Context, o MyOptions) (c *MyCluster, err error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	bins, err := findMariaDB()
	if err != nil {
		return nil, err
	}
	c = &MyCluster{Opts: o, BaseDir: o.BaseDir, bins: bins}
	if c.BaseDir == "" {
		if c.BaseDir, err = os.MkdirTemp("", "baton-my-"); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.createdDir = true
	} else if err := os.MkdirAll(c.BaseDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if c.BaseDir, err = filepath.Abs(c.BaseDir); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	cl := c // the returns below set c to nil before this runs
	defer func() {
		if err != nil {
			err = cl.abort(err)
			c = nil
		}
	}()
	if strings.ContainsAny(c.BaseDir, "\"\\\r\n") {
		return nil, fmt.Errorf("cluster: BaseDir %q may not contain '\"', '\\' or line breaks", c.BaseDir)
	}
	if err := c.makeNodes(); err != nil {
		return nil, err
	}
	if c.TLS, err = GenerateTLS(filepath.Join(c.BaseDir, "tls"), o.AppUser, c.tlsNames()...); err != nil {
		return nil, err
	}
	o.Logf("cluster: MariaDB %s in %s", bins.server, c.BaseDir)
	// One bootstrap, copied before any server starts: mariadb-install-db
	// costs ~0.6 s of CPU per node, a copy ~50 ms.
	if err := c.initNode(ctx, c.Primary); err != nil {
		return nil, err
	}
	for _, r := range c.Replicas {
		if err := copyTree(c.Primary.DataDir, r.DataDir); err != nil {
			return nil, err
		}
	}
	if err := eachMyNode(c.Nodes(), func(n *MyNode) error { return c.startFirst(ctx, n) }); err != nil {
		return nil, err
	}
	if err := eachMyNode(c.Replicas, func(r *MyNode) error { return c.follow(ctx, r) }); err != nil {
		return nil, err
	}
	if err := c.WaitCaughtUp(ctx); err != nil {
		return nil, err
	}
	o.Logf("cluster: MariaDB primary %s and %d replicas ready in %v", c.Primary.Addr(),
		len(c.Replicas), time.Since(began).Round(time.Millisecond))
	return c, nil
}

// abort kills whatever started, keeps the log tails and removes a
// temporary BaseDir.
func (c *MyCluster) abort(cause error) error {
	se := &StartError{Err: cause}
	for _, n := range c.Nodes() {
		if n != nil {
			_ = n.Kill()
			if tail := n.LogTail(logTailBytes); tail != "" {
				se.Logs = append(se.Logs, NodeLog{Node: n.Name, Tail: tail})
			}
		}
	}
	_ = c.Stop()
	return se
}

// makeNodes names the nodes, numbers them and picks their ports.
func (c *MyCluster) makeNodes() error {
	taken := map[int]bool{}
	mk := func(i int, name string) (*MyNode, error) {
		n := &MyNode{Name: name, ServerID: i + 1, DataDir: filepath.Join(c.BaseDir, name), c: c, replica: i > 0,
			TLS: tlsFor(name, c.Opts.NoTLS, c.Opts.NoTLSNodes)}
		if sock := n.Socket(); len(sock) > maxSocketPath {
			return nil, fmt.Errorf("cluster: BaseDir %s is too long for a unix socket path "+
				"(%d > %d bytes): use a shorter BaseDir", c.BaseDir, len(sock), maxSocketPath)
		}
		if _, err := os.Stat(n.DataDir); err == nil {
			return nil, fmt.Errorf("cluster: %s already exists: BaseDir must not hold an earlier cluster", n.DataDir)
		}
		pref := 0
		if i < len(c.Opts.Ports) {
			pref = c.Opts.Ports[i]
		}
		var err error
		if n.Port, err = pickPort(pref, taken); err != nil {
			return nil, err
		}
		if c.Opts.Lab != nil {
			if n.NS, err = c.Opts.Lab.Add(name); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	var err error
	if c.Primary, err = mk(0, "primary"); err != nil {
		return err
	}
	for i := 1; i <= c.Opts.Replicas; i++ {
		r, err := mk(i, fmt.Sprintf("replica%d", i))
		if err != nil {
			return err
		}
		c.Replicas = append(c.Replicas, r)
	}
	return nil
}

// tlsNames are the names the server certificate is valid for: 127.0.0.1,
// localhost and, in a Lab, every lane address of every node.
func (c *MyCluster) tlsNames() []string {
	names := []string{"127.0.0.1", "localhost"}
	if lab := c.Opts.Lab; lab != nil {
		for _, n := range c.Nodes() {
			for lane := range lab.Lanes {
				if host := n.NS.IP(lane); !containsStr(names, host) {
					names = append(names, host)
				}
			}
		}
	}
	return names
}

// installTail is how much of mariadb-install-db's output an error keeps.
const installTail = 2 << 10

// initNode creates the node's data directory with mariadb-install-db,
// accounts and application database included.
func (c *MyCluster) initNode(ctx context.Context, n *MyNode) error {
	began := time.Now()
	sqlFile := filepath.Join(c.BaseDir, n.Name+"-init.sql") // holds passwords: removed below
	if err := os.WriteFile(sqlFile, []byte(myInitSQL(c.Opts)), 0o600); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer os.Remove(sqlFile)
	// A private tmpdir: concurrent bootstraps in /tmp collide on temporary table file names.
	if err := os.MkdirAll(n.TmpDir(), 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	args := []string{"--no-defaults", "--datadir=" + n.DataDir, "--tmpdir=" + n.TmpDir(),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
		"--extra-file=" + sqlFile}
	if c.bins.baseDir != "" {
		args = append(args, "--basedir="+c.bins.baseDir)
	}
	if isRoot() {
		args = append(args, "--user=root")
	}
	if c.Opts.Fast {
		for _, s := range myFastSettings {
			args = append(args, "--"+s)
		}
	}
	cmd := c.bins.command(ctx, c.BaseDir, c.bins.installDB, args...)
	// The bootstrap mariadbd outlives a killed script for as long as it
	// takes to read the rest of its SQL; do not wait on its pipes forever.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > installTail {
			out = out[len(out)-installTail:]
		}
		return fmt.Errorf("cluster: %s: mariadb-install-db: %w: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	c.Opts.Logf("cluster: %s: mariadb-install-db took %v", n.Name, time.Since(began).Round(time.Millisecond))
	return nil
}

// copyTree copies the freshly bootstrapped data directory src, which holds
// only directories and regular files, to dst. A cleanly shut down MariaDB
// data directory has no per-server identity (no auto.cnf as in MySQL) and,
// before the first start, no binlog.
func copyTree(src, dst string) error {
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		case d.Type().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		default:
			return fmt.Errorf("%s is neither a directory nor a regular file", path)
		}
	})
	if err != nil {
		return fmt.Errorf("cluster: copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// startFirst starts a node, moving it to another free port when its port
// was taken since makeNodes picked it.
func (c *MyCluster) startFirst(ctx context.Context, n *MyNode) error {
	for attempt := 1; ; attempt++ {
		err := n.Start(ctx)
		if !errors.Is(err, ErrPortInUse) || attempt == portAttempts {
			return err
		}
		old := n.Port
		if n.Port, err = FreePort(); err != nil {
			return err
		}
		c.Opts.Logf("cluster: %s: port %d taken, trying %d", n.Name, old, n.Port)
	}
}

// follow points replica r at the primary (in a Lab: at its lane 0
// address). MASTER_CONNECT_RETRY=1 makes it reconnect within a second after
// the primary restarts (the default is 60).
func (c *MyCluster) follow(ctx context.Context, r *MyNode) error {
	db := r.rootDB()
	defer db.Close()
	for _, q := range []string{
		"SET GLOBAL gtid_slave_pos = ''",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %d, "+
			"MASTER_USER = %s, MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos, "+
			"MASTER_CONNECT_RETRY = 1", myLiteral(c.Primary.host()), c.Primary.Port, myLiteral(myReplUser), myLiteral(myReplPassword)),
		"START SLAVE",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("cluster: %s: %s: %w", r.Name, strings.SplitN(q, " =", 2)[0], err)
		}
	}
	return nil
}

// WaitCaughtUp waits until every replica runs both replication threads and
// has applied everything the primary had binlogged when WaitCaughtUp was
// called (its @@gtid_slave_pos covers the primary's @@gtid_binlog_pos). It
// polls every 50 ms until ctx ends, and fails at once when a replication
// thread has stopped.
func (c *MyCluster) WaitCaughtUp(ctx context.Context) error {
	if len(c.Replicas) == 0 {
		return nil
	}
	db := c.Primary.rootDB()
	var pos string
	err := db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos)
	db.Close()
	if err != nil {
		return fmt.Errorf("cluster: read the primary's @@gtid_binlog_pos: %w", err)
	}
	return eachMyNode(c.Replicas, func(r *MyNode) error { return r.waitReplica(ctx, pos) })
}

// eachMyNode runs f for every node concurrently and joins the errors.
func eachMyNode(nodes []*MyNode, f func(*MyNode) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() { errs[i] = f(n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Nodes returns the primary followed by the replicas.
func (c *MyCluster) Nodes() []*MyNode {
	return append([]*MyNode{c.Primary}, c.Replicas...)
}

// Stop shuts every node down (replicas first, then the primary) and
// removes BaseDir if StartMariaDB created it. Later calls return the first
// call's result.
func (c *MyCluster) Stop() error {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopped {
		return c.stopErr
	}
	c.stopped = true
	errs := []error{eachMyNode(c.Replicas, func(r *MyNode) error { return r.Stop() })}
	if c.Primary != nil {
		errs = append(errs, c.Primary.Stop())
	}
	if c.createdDir {
		if err := os.RemoveAll(c.BaseDir); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
	}
	c.stopErr = errors.Join(errs...)
	return c.stopErr
}

// DumpLogs passes the tail of each node's error log to logf.
func (c *MyCluster) DumpLogs(logf func(format string, args ...any)) {
	for _, n := range c.Nodes() {
		logf("--- tail of the %s server log (%s) ---\n%s", n.Name, n.LogPath(), n.LogTail(logTailBytes))
	}
}

// RequireMariaDB fails the test, never skips it, when mariadbd or
// mariadb-install-db is missing, with a message saying how to install them.
func RequireMariaDB(t testing.TB) {
	t.Helper()
	if _, err := MariaDBBinDir(); err != nil {
		t.Fatalf("MariaDB is required by this test: %v", err)
	}
}

// StartMariaDBForTest starts a cluster with Fast set, logging through
// t.Logf unless o.Logf is set, and stops it when the test ends. A failure
// to start fails the test after logging the tail of each server log; so
// does a failure to stop. When the test failed, the server logs are logged
// before the cluster is stopped.
func StartMariaDBForTest(t testing.TB, o MyOptions) *MyCluster {
	t.Helper()
	RequireMariaDB(t)
	o.Fast = true
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := StartMariaDB(ctx, o)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			for _, l := range se.Logs {
				t.Logf("--- tail of the %s server log ---\n%s", l.Node, l.Tail)
			}
		}
		t.Fatalf("start MariaDB cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.DumpLogs(t.Logf)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop MariaDB cluster: %v", err)
		}
	})
	return c
}
