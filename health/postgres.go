package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

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

// pgProbeSQL reads role, position, lag and WAL receiver state in one round trip. On a primary
// it reads pg_current_wal_lsn() (which fails during recovery, hence the CASE) and the
// synchronous standbys; on a replica the replay and receive LSNs, its own lag estimate (now() and
// the replay timestamp both on the replica: baton's clock plays no part) and the WAL receiver.
// The WAL receiver's details read NULL for a monitor user without pg_read_all_stats (pg_monitor);
// its pid does not.
const pgProbeSQL = `SELECT r.rec,
  CASE WHEN r.rec THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
  pg_last_wal_receive_lsn()::text,
  EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
  w.pid, w.status, w.sender_host, w.sender_port, w.conninfo,
  current_setting('cluster_name'),
  CASE WHEN r.rec THEN NULL ELSE (SELECT json_agg(application_name) FROM pg_stat_replication
    WHERE sync_state IN ('sync', 'quorum')) END,
  current_setting('default_transaction_read_only')
FROM (SELECT pg_is_in_recovery() AS rec) r LEFT JOIN pg_stat_wal_receiver w ON true`

// pgLimited is logged once per node when the WAL receiver's details are hidden from the probe.
const pgLimited = "the monitor user cannot read pg_stat_wal_receiver; grant it pg_monitor so baton " +
	"can check each replica's WAL receiver status and source (until then, streaming means the " +
	"WAL receiver process exists, and the source is not checked)"

// Probe implements Prober.
func (p *PGProber) Probe(ctx context.Context) Observation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil || p.conn.IsClosed() {
		c, err := ConnectPG(ctx, p.node.Address, p.user.BackendUser, p.user.BackendPassword.Reveal(), p.database, "baton-monitor", PGWithTLS(p.node.TLS()))
		if err != nil {
			return Observation{Err: err}
		}
		p.conn = c
	}
	res := p.conn.ExecParams(ctx, pgProbeSQL, nil, nil, nil, nil).Read()
	if res.Err != nil {
		p.conn.Close(context.Background())
		p.conn = nil
		return Observation{Err: res.Err}
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 12 {
		return Observation{Err: fmt.Errorf("unexpected probe result")}
	}
	o, err := pgObservation(res.Rows[0])
	if err != nil {
		return Observation{Err: err}
	}
	return o
}

// pgObservation decodes the text row of pgProbeSQL (nil = NULL).
func pgObservation(row [][]byte) (Observation, error) {
	o := Observation{Up: true, InRecover: string(row[0]) == "t", ReplayPos: string(row[1]), PosKind: PosLSN, ReceivePos: string(row[2])}
	if len(row) > 11 {
		o.ReadOnly = !o.InRecover && string(row[11]) == "on"
	}
	if !o.InRecover {
		if row[10] != nil {
			if err := json.Unmarshal(row[10], &o.SyncNames); err != nil {
				return Observation{}, fmt.Errorf("probe: synchronous standbys: %w", err)
			}
		}
		return o, nil
	}
	if row[3] != nil {
		secs, err := strconv.ParseFloat(string(row[3]), 64)
		if err != nil {
			return Observation{}, fmt.Errorf("probe: replay lag %q: %w", row[3], err)
		}
		o.Lag, o.LagKnown = max(0, time.Duration(secs*float64(time.Second))), true
	}
	pid, status, host, port, conninfo := row[4], row[5], row[6], row[7], row[8]
	switch {
	case pid == nil: // no WAL receiver: not connected to any source
	case status == nil: // details hidden from this user
		o.Streaming, o.Limited = true, pgLimited
	default:
		o.Streaming = string(status) == "streaming"
		// A unix-socket source (a directory) names no endpoint to compare with.
		if h := string(host); host != nil && port != nil && !strings.HasPrefix(h, "/") {
			o.Following = net.JoinHostPort(h, string(port))
		}
	}
	o.AppName = walReceiverAppName(string(conninfo), string(row[9]))
	return o, nil
}

// walReceiverAppName is the application_name a WAL receiver reports to its primary: the one in
// primary_conninfo, else cluster_name, else "walreceiver".
func walReceiverAppName(conninfo, clusterName string) string {
	kv := parseConninfo(conninfo)
	if v := kv["application_name"]; v != "" {
		return v
	}
	if v := kv["fallback_application_name"]; v != "" {
		return v
	}
	if clusterName != "" {
		return clusterName
	}
	return "walreceiver"
}

// parseConninfo returns the keywords of a libpq connection string with their values (those
// parsed before a fault, if it is malformed).
func parseConninfo(s string) map[string]string {
	pairs, _ := ParseConninfo(s)
	kv := make(map[string]string, len(pairs))
	for _, p := range pairs {
		kv[p.Key] = p.Value
	}
	return kv
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

// ConnectPG opens a connection to a PostgreSQL node, without TLS unless an option says so: pass
// PGWithTLS(node.TLS()) for every connection to a configured node. The password is passed in
// the config, never in a connection string, so it cannot leak into error text. opts adjust the
// config last (proxy/pgproxy uses one to authenticate with a credential other than a password).
func ConnectPG(ctx context.Context, addr, user, password, database, appName string, opts ...func(*pgconn.Config)) (*pgconn.PgConn, error) {
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
	for _, o := range opts {
		o(cfg)
	}
	return pgconn.ConnectConfig(ctx, cfg)
}
