package health

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// MyProber probes a MySQL/MariaDB node on a persistent monitoring connection: a node with
// @@read_only off is a primary candidate, one with it on a replica.
type MyProber struct {
	node *topology.Node
	user *topology.User
	db   string

	mu   sync.Mutex // guards conn
	pool *sql.DB
}

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
		conn, err := mysql.NewConnector(MyConfig(p.node.Address, p.user.BackendUser, p.user.BackendPassword.Reveal(), p.db))
		if err != nil {
			return Observation{Err: err}
		}
		p.pool = sql.OpenDB(conn)
		p.pool.SetMaxOpenConns(1)
		p.pool.SetMaxIdleConns(1)
	}
	var ro int
	if err := p.pool.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return Observation{Err: fmt.Errorf("probe: %w", err)}
	}
	return Observation{Up: true, InRecover: ro != 0}
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
