package health

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

	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// MyProber probes a MySQL/MariaDB node on a persistent monitoring connection: a node with
// @@read_only off is a primary candidate, one with it on a replica. On a replica it reads the
// replication status (SHOW SLAVE STATUS; SHOW REPLICA STATUS on MySQL), which needs the SLAVE
// MONITOR (MariaDB) or REPLICATION CLIENT (MySQL) privilege; without it a MariaDB probe falls
// back to the Slave_running status variable and GTID positions.
type MyProber struct {
	node *topology.Node
	user *topology.User
	db   string

	mu         sync.Mutex // serialises probes and guards the fields below
	pool       *sql.DB
	flavor     myFlavor
	statusStmt string // the replica status statement this server accepts
}

type myFlavor uint8

const (
	flavorUnknown myFlavor = iota
	flavorMariaDB
	flavorMySQL
)

// MySQL error numbers the probe handles.
const (
	erSpecificAccessDenied = 1227
	erParseError           = 1064
)

// myLimited is logged once per node when replica status is hidden from the probe.
const myLimited = "the monitor user cannot run SHOW SLAVE STATUS; grant it SLAVE MONITOR (MariaDB) or " +
	"REPLICATION CLIENT (MySQL) so baton can read Seconds_Behind_Master and each replica's source " +
	"(until then, MariaDB replicas are judged by Slave_running and GTID positions, MySQL replicas serve no reads)"

// NewMyProberFactory returns probers that connect as the cluster's monitor user.
func NewMyProberFactory(cl *topology.Cluster) ProberFactory {
	u := cl.MonitorCredentials()
	return func(n *topology.Node) Prober { return &MyProber{node: n, user: u, db: cl.Database} }
}

// MyConfig is a go-sql-driver configuration for a node (the password is not part of any DSN
// text, so it cannot reach logs or error messages).
func MyConfig(addr, user, password, db string) *mysql.Config {
	c := mysql.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd, c.DBName = "tcp", addr, user, password, db
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	c.AllowNativePasswords = true
	return c
}

// Probe implements Prober.
func (p *MyProber) Probe(ctx context.Context) Observation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pool == nil {
		conn, err := MyConnector(MyConfig(p.node.Address, p.user.BackendUser, p.user.BackendPassword.Reveal(), p.db), p.node.TLS())
		if err != nil {
			return Observation{Err: err}
		}
		p.pool = sql.OpenDB(conn)
		p.pool.SetMaxOpenConns(1)
		p.pool.SetMaxIdleConns(1)
	}
	if p.flavor == flavorUnknown {
		var v string
		if err := p.pool.QueryRowContext(ctx, "SELECT @@version").Scan(&v); err != nil {
			return Observation{Err: fmt.Errorf("probe: %w", err)}
		}
		p.flavor, p.statusStmt = flavorMySQL, "SHOW REPLICA STATUS"
		if strings.Contains(v, "MariaDB") {
			p.flavor, p.statusStmt = flavorMariaDB, "SHOW SLAVE STATUS"
		}
	}
	q, kind := "SELECT @@global.read_only, @@global.gtid_executed", PosUnknown
	if p.flavor == flavorMariaDB {
		q, kind = "SELECT @@global.read_only, @@global.gtid_current_pos", PosMariaGTID
	}
	var ro int
	var pos sql.NullString
	if err := p.pool.QueryRowContext(ctx, q).Scan(&ro, &pos); err != nil {
		return Observation{Err: fmt.Errorf("probe: %w", err)}
	}
	o := Observation{Up: true, InRecover: ro != 0, ReplayPos: pos.String, PosKind: kind}
	if o.InRecover {
		if err := p.replicaStatus(ctx, &o); err != nil {
			o.Err = fmt.Errorf("probe: replica status: %w", err)
		}
	}
	return o
}

// replicaStatus fills o's streaming state, source and lag. Columns are matched by name: they
// differ between versions and between the SLAVE and REPLICA spellings.
func (p *MyProber) replicaStatus(ctx context.Context, o *Observation) error {
	rows, err := p.pool.QueryContext(ctx, p.statusStmt)
	if myErrno(err) == erParseError && p.statusStmt == "SHOW REPLICA STATUS" { // MySQL before 8.0.22
		p.statusStmt = "SHOW SLAVE STATUS"
		rows, err = p.pool.QueryContext(ctx, p.statusStmt)
	}
	if myErrno(err) == erSpecificAccessDenied {
		o.Limited = myLimited
		if p.flavor != flavorMariaDB {
			return nil
		}
		var name, val string
		if err := p.pool.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Slave_running'").Scan(&name, &val); err != nil {
			return err
		}
		o.Streaming = strings.EqualFold(val, "ON") // both threads run and the IO thread is connected
		return nil
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if !rows.Next() {
		return rows.Err() // read-only but replicating from nobody
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return err
	}
	var io, sqlThread, host, port string
	for i, c := range cols {
		v := vals[i]
		switch c {
		case "Slave_IO_Running", "Replica_IO_Running":
			io = v.String
		case "Slave_SQL_Running", "Replica_SQL_Running":
			sqlThread = v.String
		case "Master_Host", "Source_Host":
			host = v.String
		case "Master_Port", "Source_Port":
			port = v.String
		case "Seconds_Behind_Master", "Seconds_Behind_Source":
			if v.Valid { // NULL: a thread is not running, the lag is unknown
				if secs, err := strconv.ParseInt(v.String, 10, 64); err == nil && secs >= 0 {
					o.Lag, o.LagKnown = time.Duration(secs)*time.Second, true
				}
			}
		}
	}
	o.Streaming = io == "Yes" && sqlThread == "Yes"
	if host != "" && port != "" {
		o.Following = net.JoinHostPort(host, port)
	}
	return rows.Err()
}

func myErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// Close implements Prober.
func (p *MyProber) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pool != nil {
		p.pool.Close()
		p.pool = nil
	}
}
