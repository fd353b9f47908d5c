package failover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// MySQL/MariaDB steps (DESIGN §3). MariaDB (10.5+, tested on 10.11) is the primary target:
// GTID lists, MASTER_USE_GTID, SHOW SLAVE STATUS. Oracle MySQL (8.0.23+, detected by @@version
// not naming MariaDB) gets the REPLICA/SOURCE spellings, super_read_only and GTID sets; those
// paths are best effort and not tested against a server here.
//
// failover.user needs, on MariaDB 10.11: READ_ONLY ADMIN (read_only), CONNECTION ADMIN (KILL of
// other users' connections), REPLICATION SLAVE ADMIN (STOP/START/CHANGE MASTER, RESET SLAVE),
// SLAVE MONITOR (SHOW SLAVE STATUS) and PROCESS (every row of the processlist); SUPER covers
// them all. A user with READ_ONLY ADMIN (or SUPER) can still write on a fenced node: application
// accounts must not have it.

// myFlavor is the server family, detected once per node.
type myFlavor uint8

const (
	myUnknown myFlavor = iota
	myMariaDB
	myMySQL
)

// MySQL/MariaDB error numbers the steps handle.
const (
	erNoSuchThread    = 1094 // KILL of a connection that is gone
	erMasterFatalRead = 1236 // the source cannot serve the replica's position
	threadStopped     = "No"
)

// myEngine implements Engine for MySQL and MariaDB.
type myEngine struct {
	cl      *topology.Cluster
	user    *topology.User // nil when userErr is set
	userErr error

	mu    sync.Mutex // guards nodes
	nodes map[string]*myAdmin
}

// myAdmin is the administrative pool (one connection) of one node.
type myAdmin struct {
	mu     sync.Mutex // held for a whole step; guards the fields
	db     *sql.DB
	flavor myFlavor
	tls    string // the NodeTLS.Ident the pool was made with
}

var _ Engine = (*myEngine)(nil)

// NewMy returns the MySQL/MariaDB Engine of cl. It connects as cl.Failover.User (its backend
// credentials) without a default database, dialing within cl.Pool.ConnectTimeout. Each node gets
// a pool of at most one connection, so that Fence can spare exactly its own.
func NewMy(cl *topology.Cluster) Engine {
	e := &myEngine{cl: cl, nodes: map[string]*myAdmin{}}
	e.user, e.userErr = failoverUser(cl)
	return e
}

// admin returns n's pool, opening it (lazily: no connection yet) on first use.
func (e *myEngine) admin(n *topology.Node) (*myAdmin, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.nodes[n.Address]; a != nil {
		if a.tls == n.TLS().Ident() {
			return a, nil
		}
		a.db.Close() // backend_tls changed by a reload: a new pool
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", n.Address
	cfg.User, cfg.Passwd = backendUser(e.user), e.user.BackendPassword.Reveal()
	cfg.Timeout = connectTimeout(e.cl)                                // ctx bounds every statement
	cfg.Logger = &mysql.NopLogger{}                                   // errors reach the caller; dead nodes are expected here
	cfg.Params = map[string]string{"sql_mode": "'STRICT_ALL_TABLES'"} // backslash escapes on
	conn, err := health.MyConnector(cfg, n.TLS())
	if err != nil {
		return nil, err
	}
	a := &myAdmin{db: sql.OpenDB(conn), tls: n.TLS().Ident()}
	a.db.SetMaxOpenConns(1)
	a.db.SetMaxIdleConns(1)
	e.nodes[n.Address] = a
	return a, nil
}

// do runs f on n's administrative connection within ctx (given the step timeout when it has no
// deadline). The server flavor is read on first use.
func (e *myEngine) do(ctx context.Context, n *topology.Node, step string, f func(ctx context.Context, c *sql.Conn, fl myFlavor) error) error {
	if e.userErr != nil {
		return stepError(n, step, e.userErr)
	}
	ctx, cancel := withDeadline(ctx, defaultStepTimeout)
	defer cancel()
	a, err := e.admin(n)
	if err != nil {
		return stepError(n, step, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.db.Conn(ctx)
	if err != nil {
		return connectError(n, step, err)
	}
	defer c.Close()
	if a.flavor == myUnknown {
		var v string
		if err := c.QueryRowContext(ctx, "SELECT @@version").Scan(&v); err != nil {
			return stepError(n, step, err)
		}
		a.flavor = myMySQL
		if strings.Contains(strings.ToLower(v), "mariadb") {
			a.flavor = myMariaDB
		}
	}
	if err := f(ctx, c, a.flavor); err != nil {
		return stepError(n, step, err)
	}
	return nil
}

// Close implements Engine.
func (e *myEngine) Close() {
	e.mu.Lock()
	nodes := e.nodes
	e.nodes = map[string]*myAdmin{}
	e.mu.Unlock()
	for _, a := range nodes {
		a.db.Close()
	}
}

// myStatus is SHOW SLAVE STATUS (MariaDB) / SHOW REPLICA STATUS (MySQL), by column name; nil
// when the node has no replication source configured.
type myStatus map[string]string

// get returns the first of the named columns present.
func (s myStatus) get(names ...string) string {
	for _, n := range names {
		if v, ok := s[n]; ok {
			return v
		}
	}
	return ""
}

func (s myStatus) host() string      { return s.get("Master_Host", "Source_Host") }
func (s myStatus) port() string      { return s.get("Master_Port", "Source_Port") }
func (s myStatus) ioRunning() string { return s.get("Slave_IO_Running", "Replica_IO_Running") }
func (s myStatus) sqlRunning() string {
	return s.get("Slave_SQL_Running", "Replica_SQL_Running")
}
func (s myStatus) source() string {
	if s.host() == "" {
		return ""
	}
	return net.JoinHostPort(s.host(), s.port())
}
func (s myStatus) ioErrno() int { n, _ := strconv.Atoi(s["Last_IO_Errno"]); return n }

// describe summarizes the threads for an error message.
func (s myStatus) describe() string {
	if s == nil {
		return "no replication source configured"
	}
	d := fmt.Sprintf("IO thread %s, SQL thread %s, source %s", s.ioRunning(), s.sqlRunning(), s.source())
	if e := s["Last_IO_Error"]; e != "" {
		d += ", last IO error: " + e
	}
	if e := s["Last_SQL_Error"]; e != "" {
		d += ", last SQL error: " + e
	}
	return d
}

// readStatus reads the replication status; its columns vary by version, so they are matched by
// name.
func readStatus(ctx context.Context, c *sql.Conn, fl myFlavor) (myStatus, error) {
	q := "SHOW SLAVE STATUS"
	if fl == myMySQL {
		q = "SHOW REPLICA STATUS"
	}
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	st := myStatus{}
	for i, name := range cols {
		st[name] = vals[i].String
	}
	return st, rows.Err()
}

// myPositions are a node's GTID positions: applied (MariaDB gtid_current_pos, MySQL
// gtid_executed) and, on a replica, received (Gtid_IO_Pos / Retrieved_Gtid_Set).
func myPositions(ctx context.Context, c *sql.Conn, fl myFlavor, st myStatus) (applied, received string, err error) {
	if fl == myMySQL {
		if err := c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&applied); err != nil {
			return "", "", err
		}
		applied = strings.Join(strings.Fields(applied), "")
		received = applied
		if r := strings.Join(strings.Fields(st["Retrieved_Gtid_Set"]), ""); r != "" {
			received = applied + "," + r
		}
		return applied, received, nil
	}
	if err := c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_current_pos").Scan(&applied); err != nil {
		return "", "", err
	}
	received, err = health.MergeMariaGTIDs(applied, st["Gtid_IO_Pos"])
	return applied, received, err
}

// Inspect implements Engine. InRecovery: a replication source is configured or @@read_only is on.
func (e *myEngine) Inspect(ctx context.Context, n *topology.Node) (NodeInfo, error) {
	var info NodeInfo
	err := e.do(ctx, n, "inspect", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		var ro, sro int
		q := "SELECT @@GLOBAL.read_only, 0"
		if fl == myMySQL {
			q = "SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only"
		}
		if err := c.QueryRowContext(ctx, q).Scan(&ro, &sro); err != nil {
			return err
		}
		st, err := readStatus(ctx, c, fl)
		if err != nil {
			return err
		}
		applied, received, err := myPositions(ctx, c, fl, st)
		if err != nil {
			return err
		}
		info = NodeInfo{
			InRecovery: st.host() != "" || ro != 0,
			Writable:   ro == 0 && sro == 0,
			Received:   received,
			Applied:    applied,
			Source:     st.source(),
		}
		return nil
	})
	return info, err
}

// setReadOnly switches read_only (and super_read_only on MySQL).
func setReadOnly(ctx context.Context, c *sql.Conn, fl myFlavor, on bool) error {
	var qs []string
	switch {
	case fl == myMySQL && on:
		qs = []string{"SET GLOBAL super_read_only = ON"} // implies read_only
	case fl == myMySQL:
		qs = []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
	case on:
		qs = []string{"SET GLOBAL read_only = ON"}
	default:
		qs = []string{"SET GLOBAL read_only = OFF"}
	}
	for _, q := range qs {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// myClientsSQL lists the client connections Fence ends: not its own, not replication (dump
// threads serving replicas, the node's own replica threads) and not the server's daemons.
const myClientsSQL = `SELECT ID FROM information_schema.PROCESSLIST
WHERE ID <> CONNECTION_ID()
  AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', 'Slave_SQL',
    'Slave_worker', 'Killed')
  AND USER NOT IN ('system user', 'event_scheduler')`

// Fence implements Engine: read_only (MySQL: super_read_only) ON, then KILL CONNECTION of every
// client connection, and Fence waits until they are gone. Open transactions roll back.
func (e *myEngine) Fence(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "fence", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		if err := setReadOnly(ctx, c, fl, true); err != nil {
			return err
		}
		ids, err := myClientIDs(ctx, c)
		if err != nil {
			return err
		}
		for _, id := range ids {
			_, err := c.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10))
			var me *mysql.MySQLError
			if err != nil && !(errors.As(err, &me) && me.Number == erNoSuchThread) {
				return fmt.Errorf("KILL CONNECTION %d: %w", id, err)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		return pollUntil(ctx, "killed connections to end", func() (bool, string, error) {
			left, err := myClientIDs(ctx, c)
			if err != nil {
				return false, "", err
			}
			n := 0
			for _, id := range left {
				for _, k := range ids {
					if id == k {
						n++
					}
				}
			}
			return n == 0, fmt.Sprintf("%d of %d still open", n, len(ids)), nil
		})
	})
}

func myClientIDs(ctx context.Context, c *sql.Conn) ([]uint64, error) {
	rows, err := c.QueryContext(ctx, myClientsSQL)
	if err != nil {
		return nil, fmt.Errorf("list client connections: %w", err)
	}
	defer rows.Close()
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Unfence implements Engine.
func (e *myEngine) Unfence(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "unfence", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		return setReadOnly(ctx, c, fl, false)
	})
}

// WaitApplied implements Engine: it polls until the applied position (gtid_current_pos /
// gtid_executed) covers what the IO thread has received and pos. A stopped SQL thread fails at
// once with its last error.
func (e *myEngine) WaitApplied(ctx context.Context, n *topology.Node, pos string) error {
	ctx, cancel := withDeadline(ctx, applyTimeout(e.cl))
	defer cancel()
	return e.do(ctx, n, "wait applied", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		return pollUntil(ctx, "the SQL thread to catch up", func() (bool, string, error) {
			st, err := readStatus(ctx, c, fl)
			if err != nil {
				return false, "", err
			}
			applied, received, err := myPositions(ctx, c, fl, st)
			if err != nil {
				return false, "", err
			}
			state := fmt.Sprintf("applied %q, received %q, want %q", applied, received, pos)
			if st != nil && st.sqlRunning() != "Yes" {
				return false, state, fmt.Errorf("the SQL thread is not running (%s)", st.describe())
			}
			if cmp, ok := gtidCompare(applied, received); !ok || cmp < 0 {
				return false, state, nil
			}
			if pos == "" {
				return true, state, nil
			}
			cmp, ok := gtidCompare(applied, pos)
			if !ok && !isMySQLSet(pos) { // pos has a domain applied lacks, or vice versa
				a, err1 := health.ParseMariaPos(applied)
				w, err2 := health.ParseMariaPos(pos)
				if err1 != nil || err2 != nil {
					return false, state, errors.Join(err1, err2)
				}
				return a.Covers(w), state, nil
			}
			return ok && cmp >= 0, state, nil
		})
	})
}

// Promote implements Engine: STOP SLAVE; RESET SLAVE ALL; read_only OFF (MySQL: STOP REPLICA;
// RESET REPLICA ALL; super_read_only and read_only OFF), then @@read_only must read 0. What
// the node received but had not applied is discarded: call WaitApplied first.
func (e *myEngine) Promote(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "promote", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		st, err := readStatus(ctx, c, fl)
		if err != nil {
			return err
		}
		if st != nil {
			killReceiver(ctx, c, fl)
			qs := []string{"STOP SLAVE", "RESET SLAVE ALL"}
			if fl == myMySQL {
				qs = []string{"STOP REPLICA", "RESET REPLICA ALL"}
			}
			for _, q := range qs {
				if _, err := c.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
			}
		}
		if err := setReadOnly(ctx, c, fl, false); err != nil {
			return err
		}
		var ro int
		if err := c.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if ro != 0 {
			return errors.New("verify: @@read_only is still on")
		}
		return nil
	})
}

// Repoint implements Engine: STOP SLAVE; CHANGE MASTER TO the primary's host and port,
// MASTER_USE_GTID=slave_pos (and failover.replication_user's credentials when set, else the
// replica keeps its own); START SLAVE. It returns once both replication threads run and the
// replica has applied what the primary had binlogged when Repoint began. A replica holding
// transactions the primary lacks is refused: it must be rebuilt.
func (e *myEngine) Repoint(ctx context.Context, replica, primary *topology.Node) error {
	return e.attach(ctx, replica, primary, "repoint to "+primary.Name, false)
}

// Rejoin implements Engine: the old primary is made read-only and attached to primary with
// MASTER_USE_GTID=current_pos and failover.replication_user's credentials (required). A node
// holding transactions the new primary lacks is refused with an error saying it must be rebuilt.
func (e *myEngine) Rejoin(ctx context.Context, old, primary *topology.Node) error {
	if e.cl.Failover.ReplicationUser == "" {
		return stepError(old, "rejoin to "+primary.Name, errors.New("failover.replication_user is not set: "+
			"an old primary has no replication credentials of its own"))
	}
	return e.attach(ctx, old, primary, "rejoin to "+primary.Name, true)
}

// ErrMustRebuild is wrapped by Repoint and Rejoin when a MySQL/MariaDB node holds transactions
// its new primary does not have, so that it cannot replicate from it: rebuild it from a backup
// of the primary.
var ErrMustRebuild = errors.New("failover: node has transactions the new primary lacks; rebuild it from the primary")

// attach points n at primary. rejoin: n was a primary (current_pos, read_only first, credentials
// required); otherwise n is a replica (slave_pos).
func (e *myEngine) attach(ctx context.Context, n, primary *topology.Node, step string, rejoin bool) error {
	if n.Address == primary.Address {
		return stepError(n, step, errors.New("a node cannot replicate from itself"))
	}
	host, port, err := net.SplitHostPort(primary.Address)
	if err != nil {
		return stepError(n, step, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return stepError(n, step, fmt.Errorf("bad port in %q", primary.Address))
	}
	ctx, cancel := withDeadline(ctx, defaultStepTimeout)
	defer cancel()
	var srcPos, srcState string
	var srcFlavor myFlavor
	err = e.do(ctx, primary, step+": read the primary's position", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		srcFlavor = fl
		var err error
		srcPos, srcState, err = mySourcePos(ctx, c, fl)
		return err
	})
	if err != nil {
		return err
	}
	return e.do(ctx, n, step, func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		if fl != srcFlavor {
			return errors.New("the node and the primary are not the same server family (MySQL vs MariaDB)")
		}
		if rejoin {
			if err := setReadOnly(ctx, c, fl, true); err != nil {
				return err
			}
		}
		applied, _, err := myPositions(ctx, c, fl, nil)
		if err != nil {
			return err
		}
		if why, diverged := myDiverged(fl, applied, srcState); diverged {
			return fmt.Errorf("%w (%s)", ErrMustRebuild, why)
		}
		// A replica that already follows the primary (a switchover points the replicas at the
		// candidate before promoting it) is left running: stopping it would hold the new
		// primary's semi-synchronous commits for nothing.
		following := false
		if st, err := readStatus(ctx, c, fl); err == nil && st != nil && !rejoin {
			following = st.ioRunning() == "Yes" && st.sqlRunning() == "Yes" && health.SameEndpoint(st.source(), primary.Address)
		}
		if !following {
			stmts := myAttachSQL(fl, host, pn, e.cl.Failover, rejoin)
			killReceiver(ctx, c, fl)
			for i, q := range stmts {
				if _, err := c.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", myStmtName(fl, i), err) // q may hold a password
				}
			}
		}
		return pollUntil(ctx, "replication from "+primary.Address+" to run", func() (bool, string, error) {
			st, err := readStatus(ctx, c, fl)
			if err != nil {
				return false, "", err
			}
			if st == nil {
				return false, "", errors.New("the replication source vanished")
			}
			if st.ioErrno() == erMasterFatalRead {
				return false, "", fmt.Errorf("%w (%s)", ErrMustRebuild, st.describe())
			}
			if st.ioRunning() == threadStopped || st.sqlRunning() == threadStopped {
				return false, "", fmt.Errorf("replication stopped: %s", st.describe())
			}
			state := st.describe()
			if st.ioRunning() != "Yes" || st.sqlRunning() != "Yes" || !health.SameEndpoint(st.source(), primary.Address) {
				return false, state, nil
			}
			applied, _, err := myPositions(ctx, c, fl, st)
			if err != nil {
				return false, "", err
			}
			cmp, ok := gtidCompare(applied, srcPos)
			if !ok && !isMySQLSet(srcPos) {
				a, err1 := health.ParseMariaPos(applied)
				w, err2 := health.ParseMariaPos(srcPos)
				if err1 != nil || err2 != nil {
					return false, state, errors.Join(err1, err2)
				}
				ok, cmp = true, -1
				if a.Covers(w) {
					cmp = 0
				}
			}
			return ok && cmp >= 0, fmt.Sprintf("%s, applied %q, primary had %q", state, applied, srcPos), nil
		})
	})
}

// myDiverged reports whether position have holds transactions the source lacks; src is the
// source's gtid_executed (MySQL) or gtid_binlog_state (MariaDB).
func myDiverged(fl myFlavor, have, src string) (string, bool) {
	if fl == myMySQL {
		h, err1 := parseMySQLSet(have)
		s, err2 := parseMySQLSet(src)
		if err1 != nil || err2 != nil {
			return "", false // the server will tell
		}
		if n := mysqlMissing(s, h); n > 0 {
			return fmt.Sprintf("%d transactions are not in the new primary's gtid_executed", n), true
		}
		return "", false
	}
	h, err1 := health.ParseMariaPos(have)
	s, err2 := parseMariaState(src)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return mariaDiverged(h, s)
}

// mySourcePos reads a source's position (MariaDB gtid_binlog_pos, MySQL gtid_executed) and what
// myDiverged compares a node with (MariaDB gtid_binlog_state, MySQL gtid_executed).
func mySourcePos(ctx context.Context, c *sql.Conn, fl myFlavor) (pos, state string, err error) {
	if fl == myMySQL {
		err = c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&pos)
		return pos, pos, err
	}
	err = c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_binlog_state").Scan(&pos, &state)
	return pos, state, err
}

// killReceiver kills the replica's I/O (receiver) threads before a STOP SLAVE. When the
// primary hangs or its network drops packets, the receiver can be blocked sending to it (a
// semi-sync acknowledgement into a full socket buffer); STOP SLAVE then asks the thread to stop
// and re-checks only every 2 s, so a promote took 2 s and each re-point 1.5 s in the hung-primary
// chaos test. KILL interrupts the thread at once (STOP SLAVE then takes a few milliseconds on
// real MariaDB). Best effort: any error leaves it to STOP SLAVE.
func killReceiver(ctx context.Context, c *sql.Conn, fl myFlavor) {
	q := "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'"
	if fl == myMySQL { // untested: no MySQL server here
		q = "SELECT PROCESSLIST_ID FROM performance_schema.threads WHERE NAME IN ('thread/sql/replica_io', 'thread/sql/slave_io') AND PROCESSLIST_ID IS NOT NULL"
	}
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		c.ExecContext(ctx, "KILL "+strconv.FormatInt(id, 10))
	}
}

// myAttachSQL is the statement sequence of attach. Names come from myStmtName, never from the
// text, which may hold the replication password.
func myAttachSQL(fl myFlavor, host string, port uint64, f topology.Failover, rejoin bool) []string {
	var b strings.Builder
	if fl == myMySQL {
		fmt.Fprintf(&b, "CHANGE REPLICATION SOURCE TO SOURCE_HOST = %s, SOURCE_PORT = %d, SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = %d",
			myQuote(host), port, connectRetry(f))
		if f.ReplicationUser != "" {
			fmt.Fprintf(&b, ", SOURCE_USER = %s, SOURCE_PASSWORD = %s", myQuote(f.ReplicationUser),
				myQuote(f.ReplicationPassword.Reveal()))
		}
		return []string{"STOP REPLICA", b.String(), "START REPLICA"}
	}
	mode := "slave_pos"
	if rejoin {
		mode = "current_pos"
	}
	fmt.Fprintf(&b, "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %d, MASTER_USE_GTID = %s, MASTER_CONNECT_RETRY = %d",
		myQuote(host), port, mode, connectRetry(f))
	if f.ReplicationUser != "" {
		fmt.Fprintf(&b, ", MASTER_USER = %s, MASTER_PASSWORD = %s", myQuote(f.ReplicationUser),
			myQuote(f.ReplicationPassword.Reveal()))
	}
	return []string{"STOP SLAVE", b.String(), "START SLAVE"}
}

// connectRetry is failover.replica_connect_retry in whole seconds, at least 1.
func connectRetry(f topology.Failover) int64 {
	return max(1, int64(f.ReplicaConnectRetry.D().Round(time.Second)/time.Second))
}

// myStmtName names statement i of myAttachSQL in errors.
func myStmtName(fl myFlavor, i int) string {
	names := []string{"STOP SLAVE", "CHANGE MASTER TO", "START SLAVE"}
	if fl == myMySQL {
		names = []string{"STOP REPLICA", "CHANGE REPLICATION SOURCE TO", "START REPLICA"}
	}
	return names[i]
}

// myQuote quotes a string literal; the session's sql_mode (set at connect) keeps backslash
// escapes on.
func myQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// Compare implements Engine on MariaDB GTID lists (per domain sequence numbers) and MySQL GTID
// sets (set inclusion).
func (e *myEngine) Compare(a, b string) (int, bool) { return gtidCompare(a, b) }

// Distance implements Engine: the transactions a has and b lacks (MariaDB: the sum over domains
// of max(0, a's seq − b's seq)); -1 when either does not parse.
func (e *myEngine) Distance(a, b string) int64 { return gtidDistance(a, b) }
