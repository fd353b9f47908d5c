package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MyNode is one MariaDB server of a MyCluster. Name, ServerID and DataDir
// never change; Port changes only while StartMariaDB moves a node off a
// port another process grabbed. Start, Stop and Kill may be called from any
// goroutine; they are serialized.
type MyNode struct {
	Name     string // "primary", "replica1", ...
	Port     int    // TCP port on 127.0.0.1 (in a namespace: on every address of NS)
	ServerID int    // @@server_id: 1 for the primary, i+1 for replica i
	DataDir  string // --datadir; also holds the unix socket and the binlogs
	TLS      bool   // the node offers TLS (MyOptions.NoTLS, NoTLSNodes)
	// NS is the node's network namespace (MyOptions.Lab), nil when it runs
	// in the caller's.
	NS *Netns

	c       *MyCluster
	replica bool // started with read_only=ON

	opMu sync.Mutex // serializes Start, Stop and Kill; held while they block
	mu   sync.Mutex // guards proc
	proc *process   // nil: not started by us, or stopped
}

// Addr returns "127.0.0.1:PORT" (in a namespace: its lane 0 address).
func (n *MyNode) Addr() string { return net.JoinHostPort(n.host(), strconv.Itoa(n.Port)) }

// LaneAddr returns the node's address on a lane of its namespace (Addr
// when it has none).
func (n *MyNode) LaneAddr(lane int) string {
	if n.NS == nil {
		return n.Addr()
	}
	return net.JoinHostPort(n.NS.IP(lane), strconv.Itoa(n.Port))
}

// host is the address the harness, the tests and the replicas reach the
// node at: 127.0.0.1, or the lane 0 address of its namespace.
func (n *MyNode) host() string {
	if n.NS != nil {
		return n.NS.IP(0)
	}
	return "127.0.0.1"
}

// bindAddress is the node's bind_address: 127.0.0.1, or in a namespace
// every address of it.
func (n *MyNode) bindAddress() string {
	if n.NS != nil {
		return "0.0.0.0"
	}
	return "127.0.0.1"
}

// Socket returns the path of the server's unix socket, <DataDir>/mysqld.sock.
func (n *MyNode) Socket() string { return filepath.Join(n.DataDir, "mysqld.sock") }

// RootDSN returns a go-sql-driver DSN connecting as root over TCP to AppDB:
// "root:PW@tcp(127.0.0.1:PORT)/APPDB" (in a namespace: its lane 0 address).
func (n *MyNode) RootDSN() string {
	return n.config("root", n.c.Opts.RootPassword, n.c.Opts.AppDB).FormatDSN()
}

// AppDSN returns a go-sql-driver DSN connecting as AppUser over TCP to
// AppDB: "app:app@tcp(127.0.0.1:PORT)/app" (in a namespace: its lane 0
// address).
func (n *MyNode) AppDSN() string {
	o := n.c.Opts
	return n.config(o.AppUser, o.AppPassword, o.AppDB).FormatDSN()
}

// config is the driver configuration of a TCP connection to the node.
func (n *MyNode) config(user, password, db string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", n.Addr(), db
	return cfg
}

// adminIOTimeout bounds each read and write of the harness's own root
// connections, so that a hung server fails a call instead of blocking it.
const adminIOTimeout = 30 * time.Second

// rootDB opens a pool of root connections without a default database.
// Its driver does not log: probes of a dead server fail on purpose, and
// errors reach the caller anyway.
func (n *MyNode) rootDB() *sql.DB {
	cfg := n.config("root", n.c.Opts.RootPassword, "")
	// The context does not bound the handshake; the I/O timeouts do.
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = connectTimeout, adminIOTimeout, adminIOTimeout
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		panic("BUG: root connector config rejected: " + err.Error())
	}
	return sql.OpenDB(conn)
}

// LogPath returns the server error log, <BaseDir>/<Name>.log.
func (n *MyNode) LogPath() string { return filepath.Join(filepath.Dir(n.DataDir), n.Name+".log") }

// ConfPath returns the node's option file, <BaseDir>/<Name>.cnf, rewritten
// by every Start; `mariadbd --defaults-file=ConfPath()` runs the node by hand.
func (n *MyNode) ConfPath() string { return filepath.Join(filepath.Dir(n.DataDir), n.Name+".cnf") }

// TmpDir is the node's private temporary directory.
func (n *MyNode) TmpDir() string { return filepath.Join(filepath.Dir(n.DataDir), n.Name+"-tmp") }

// LogTail returns at most the last maxBytes of the server log, starting at
// a line boundary; "" if there is no log.
func (n *MyNode) LogTail(maxBytes int) string {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	return readTail(f, maxBytes)
}

// PID returns the mariadbd process id, or 0 when it is not running.
func (n *MyNode) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// Running reports whether the mariadbd process is alive.
func (n *MyNode) Running() bool { return n.PID() != 0 }

// Start writes the node's option file, starts mariadbd and waits until it
// accepts a root connection. A replica resumes replicating by itself. It
// fails if the node is already running, with [ErrPortInUse] if another
// process holds the port.
func (n *MyNode) Start(ctx context.Context) error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	return n.startLocked(ctx)
}

func (n *MyNode) startLocked(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("cluster: node %s is already running (pid %d)", n.Name, n.PID())
	}
	if err := os.MkdirAll(n.TmpDir(), 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := os.WriteFile(n.ConfPath(), []byte(myNodeConf(n)), 0o600); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	log, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	fi, err := log.Stat()
	if err != nil {
		log.Close()
		return fmt.Errorf("cluster: %w", err)
	}
	logStart := fi.Size()
	// --defaults-file must come first; it also keeps /etc/mysql out.
	cmd := n.c.bins.command(context.Background(), n.DataDir, n.c.bins.server,
		"--defaults-file="+n.ConfPath())
	if n.NS != nil {
		// mariadbd runs as the caller (root in a Lab): no server user to switch to.
		new(runEnv).inNetns(cmd, n.NS)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("cluster: start %s: %w", n.Name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { // owned by the node: Stop and Kill wait for done
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	n.c.Opts.Logf("cluster: %s: mariadbd pid %d on %s", n.Name, cmd.Process.Pid, n.Addr())

	err = n.waitReady(ctx, p)
	if err == nil {
		return nil
	}
	_ = n.stopProcess(p, modeKill)
	if strings.Contains(n.logSince(logStart), "Bind on TCP/IP port") {
		return fmt.Errorf("%w: %s: %v", ErrPortInUse, n.Addr(), err)
	}
	return err
}

// logSince returns the log written since offset off.
func (n *MyNode) logSince(off int64) string {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, off, 1<<20))
	return string(b)
}

// waitReady polls every 50 ms until the server answers a root query with
// its own socket path: before InnoDB recovery is done mariadbd does not
// listen, so a probe is refused at once and leaves nothing in the log, and
// a process that took the port meanwhile is not mistaken for the node.
func (n *MyNode) waitReady(ctx context.Context, p *process) error {
	cfg := n.config("root", n.c.Opts.RootPassword, "")
	// The read timeout also bounds the handshake, which the context does
	// not: a foreign listener on the port may accept and never answer.
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = connectTimeout, connectTimeout, connectTimeout
	cfg.Logger = &mysql.NopLogger{}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last error
	for {
		var sock string
		err := db.QueryRowContext(ctx, "SELECT @@socket").Scan(&sock)
		switch {
		case err != nil:
			last = err
		case sock != n.Socket():
			last = fmt.Errorf("%s is served by another server (socket %s)", n.Addr(), sock)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s not ready: %w (last error: %v)", n.Name, ctx.Err(), last)
		case <-p.done:
			return fmt.Errorf("cluster: %s: mariadbd exited during startup (%v); see %s",
				n.Name, p.err, n.LogPath())
		case <-t.C:
		}
	}
}

// Stop shuts the node down (SIGTERM: a clean shutdown) and waits for
// mariadbd to exit; after a minute it falls back to SIGKILL. Stopping a
// node that is not running is not an error.
func (n *MyNode) Stop() error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	return n.stopProcess(p, modeFast)
}

// Kill sends SIGKILL to mariadbd, like a crash, and returns once it has
// been reaped, so that Start may follow at once (InnoDB recovers on start).
// Killing a node that is not running is not an error.
func (n *MyNode) Kill() error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	return n.stopProcess(p, modeKill)
}

// stopProcess ends p and forgets it. Called with opMu held. mariadbd is a
// single process: once it is reaped, its port, socket and InnoDB file locks
// are free.
func (n *MyNode) stopProcess(p *process, mode stopMode) error {
	defer func() {
		n.mu.Lock()
		if n.proc == p {
			n.proc = nil
		}
		n.mu.Unlock()
	}()
	if p.exited() {
		return nil
	}
	pid := p.cmd.Process.Pid
	if mode == modeFast {
		n.c.Opts.Logf("cluster: %s: shutdown of pid %d", n.Name, pid)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err == nil {
			select {
			case <-p.done:
				return nil
			case <-time.After(stopTimeout):
			}
		}
		n.c.Opts.Logf("cluster: %s: no shutdown within %v, killing", n.Name, stopTimeout)
	}
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		return fmt.Errorf("cluster: kill %s (pid %d): %w", n.Name, pid, err)
	}
	<-p.done
	n.c.Opts.Logf("cluster: %s: killed pid %d", n.Name, pid)
	return nil
}

// myReplicaStatus is the part of SHOW SLAVE STATUS the harness looks at.
type myReplicaStatus struct {
	IORunning, SQLRunning     string // "Yes", "No", "Connecting", "Preparing"
	LastIOError, LastSQLError string
	GTIDSlavePos              string
}

// errNotReplica reports that SHOW SLAVE STATUS returned no row.
var errNotReplica = errors.New("cluster: not a replica (SHOW SLAVE STATUS is empty)")

// replicaStatus reads SHOW SLAVE STATUS, whose columns vary by version and
// are therefore matched by name, and @@gtid_slave_pos.
func replicaStatus(ctx context.Context, db *sql.DB) (myReplicaStatus, error) {
	var st myReplicaStatus
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return st, fmt.Errorf("cluster: SHOW SLAVE STATUS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return st, fmt.Errorf("cluster: SHOW SLAVE STATUS: %w", err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return st, fmt.Errorf("cluster: SHOW SLAVE STATUS: %w", err)
		}
		return st, errNotReplica
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return st, fmt.Errorf("cluster: SHOW SLAVE STATUS: %w", err)
	}
	for i, c := range cols {
		v := vals[i].String
		switch c {
		case "Slave_IO_Running":
			st.IORunning = v
		case "Slave_SQL_Running":
			st.SQLRunning = v
		case "Last_IO_Error":
			st.LastIOError = v
		case "Last_SQL_Error":
			st.LastSQLError = v
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("cluster: SHOW SLAVE STATUS: %w", err)
	}
	rows.Close()
	// Only SHOW ALL SLAVES STATUS has a Gtid_Slave_Pos column.
	if err := db.QueryRowContext(ctx, "SELECT @@gtid_slave_pos").Scan(&st.GTIDSlavePos); err != nil {
		return st, fmt.Errorf("cluster: read @@gtid_slave_pos: %w", err)
	}
	return st, nil
}

// parseGTIDPos parses a MariaDB GTID position such as "0-1-42,1-2-7" into
// the highest sequence number per replication domain. The server id does
// not matter for comparing positions within a domain.
func parseGTIDPos(s string) (map[uint32]uint64, error) {
	pos := map[uint32]uint64{}
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		f := strings.Split(g, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("cluster: bad GTID %q in %q", g, s)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		_, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("cluster: bad GTID %q in %q", g, s)
		}
		pos[uint32(d)] = max(pos[uint32(d)], n)
	}
	return pos, nil
}

// gtidCovers reports whether position have includes position want: in
// every domain of want, have reached at least want's sequence number.
func gtidCovers(have, want string) (bool, error) {
	h, err := parseGTIDPos(have)
	if err != nil {
		return false, err
	}
	w, err := parseGTIDPos(want)
	if err != nil {
		return false, err
	}
	for d, seq := range w {
		if h[d] < seq {
			return false, nil
		}
	}
	return true, nil
}

// waitReplica polls the replica until both replication threads run and
// its @@gtid_slave_pos covers want. A replication thread that stopped
// (state "No") fails at once with the thread's last error.
func (n *MyNode) waitReplica(ctx context.Context, want string) error {
	db := n.rootDB()
	defer db.Close()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		st, err := replicaStatus(ctx, db)
		if err == nil {
			switch {
			case st.SQLRunning == "No":
				return fmt.Errorf("cluster: %s: replication SQL thread stopped: %s", n.Name, st.LastSQLError)
			case st.IORunning == "No":
				return fmt.Errorf("cluster: %s: replication IO thread stopped: %s", n.Name, st.LastIOError)
			case st.IORunning == "Yes" && st.SQLRunning == "Yes":
				var ok bool
				if ok, err = gtidCovers(st.GTIDSlavePos, want); ok {
					return nil
				}
				if err == nil {
					err = fmt.Errorf("at %q, want %q", st.GTIDSlavePos, want)
				}
			default:
				err = fmt.Errorf("IO thread %q (%s), SQL thread %q", st.IORunning, st.LastIOError, st.SQLRunning)
			}
		}
		if errors.Is(err, errNotReplica) {
			return fmt.Errorf("cluster: %s: %w", n.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s has not caught up: %w (last: %v)", n.Name, ctx.Err(), err)
		case <-t.C:
		}
	}
}
