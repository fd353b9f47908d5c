package health

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5/pgconn"
)

// PGProber probes a PostgreSQL node on a persistent monitoring connection.
type PGProber struct {
	node     *topology.Node
	user     *topology.User
	database string

	mu   sync.Mutex // serialises probes and guards conn
	conn *pgconn.PgConn
}

// NewPGProberFactory returns probers that connect as the cluster's monitor user.
func NewPGProberFactory(cl *topology.Cluster) ProberFactory {
	u := cl.MonitorCredentials()
	db := cl.Database
	if db == "" {
		db = u.BackendUser
	}
	return func(n *topology.Node) Prober { return &PGProber{node: n, user: u, database: db} }
}

// Probe implements Prober.
func (p *PGProber) Probe(ctx context.Context) Observation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil || p.conn.IsClosed() {
		c, err := ConnectPG(ctx, p.node.Address, p.user.BackendUser, p.user.BackendPassword.Reveal(), p.database, "baton-monitor")
		if err != nil {
			return Observation{Err: err}
		}
		p.conn = c
	}
	res := p.conn.ExecParams(ctx, "SELECT pg_is_in_recovery()", nil, nil, nil, nil).Read()
	if res.Err != nil {
		p.conn.Close(context.Background())
		p.conn = nil
		return Observation{Err: res.Err}
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return Observation{Err: fmt.Errorf("unexpected probe result")}
	}
	return Observation{Up: true, InRecover: string(res.Rows[0][0]) == "t"}
}

// Close implements Prober.
func (p *PGProber) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close(context.Background())
		p.conn = nil
	}
}

// ConnectPG opens a plain (non-TLS) connection to a PostgreSQL node. The password is passed in
// the config, never in a connection string, so it cannot leak into error text.
func ConnectPG(ctx context.Context, addr, user, password, database, appName string) (*pgconn.PgConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", addr)
	}
	cfg.Host, cfg.Port = host, uint16(pn)
	cfg.User, cfg.Password, cfg.Database = user, password, database
	cfg.RuntimeParams = map[string]string{"application_name": appName}
	cfg.Fallbacks = nil
	return pgconn.ConnectConfig(ctx, cfg)
}
