package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// PostgreSQL steps (DESIGN §3). They need PostgreSQL 13 or newer (pg_promote with wait, and
// primary_conninfo applied on reload) and a superuser as failover.user: ALTER SYSTEM,
// pg_terminate_backend of other users' sessions and pg_stat_wal_receiver's sender columns all
// need it (or, for the last two, pg_signal_backend / pg_read_all_stats plus GRANT ALTER SYSTEM
// on PostgreSQL 15+).

// pollEvery is how often a step re-reads a node while it waits for a condition.
const pollEvery = 20 * time.Millisecond

// defaultStepTimeout bounds a step whose ctx has no deadline (topology's default step_timeout).
const defaultStepTimeout = topology.DefaultStepTimeout

// pgEngine implements Engine for PostgreSQL. One administrative connection per node is kept
// open between steps; steps on the same node are serialized by that node's mutex.
type pgEngine struct {
	cl       *topology.Cluster
	user     *topology.User // nil when userErr is set
	userErr  error
	database string

	mu    sync.Mutex // guards nodes
	nodes map[string]*pgAdmin
}

// pgAdmin is the administrative connection to one node.
type pgAdmin struct {
	mu   sync.Mutex // held for a whole step; guards conn
	conn *pgx.Conn  // nil until the first step, and after a connection error
}

var _ Engine = (*pgEngine)(nil)

// NewPG returns the PostgreSQL Engine of cl. It connects as cl.Failover.User (its backend
// credentials), to cl.Database or else the database named after the backend user, dialing within
// cl.Pool.ConnectTimeout. No connection is opened before the first step.
func NewPG(cl *topology.Cluster) Engine {
	e := &pgEngine{cl: cl, nodes: map[string]*pgAdmin{}}
	e.user, e.userErr = failoverUser(cl)
	if e.user != nil {
		e.database = cl.Database
		if e.database == "" {
			e.database = backendUser(e.user)
		}
	}
	return e
}

// failoverUser returns the account the steps connect as: failover.user, else the monitor user.
func failoverUser(cl *topology.Cluster) (*topology.User, error) {
	name := cl.Failover.User
	if name == "" {
		if len(cl.Users) == 0 {
			return nil, errors.New("failover: cluster " + cl.Name + " has no users")
		}
		return cl.MonitorCredentials(), nil
	}
	u := cl.User(name)
	if u == nil {
		return nil, fmt.Errorf("failover: cluster %s: failover.user %q is not one of its users", cl.Name, name)
	}
	return u, nil
}

// backendUser is the name u connects to backends with.
func backendUser(u *topology.User) string {
	if u.BackendUser != "" {
		return u.BackendUser
	}
	return u.Name
}

// connectTimeout is the dialing bound of cl.
func connectTimeout(cl *topology.Cluster) time.Duration {
	if d := cl.Pool.ConnectTimeout.D(); d > 0 {
		return d
	}
	return topology.DefaultConnectTimeout
}

// withDeadline gives ctx the deadline d when it has none.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// stepError names the node and the step; it never holds a password (none is ever formatted).
func stepError(n *topology.Node, step string, err error) error {
	return fmt.Errorf("failover: node %s (%s): %s: %w", n.Name, n.Address, step, err)
}

// pollUntil calls check every pollEvery until it reports done, returns an error, or ctx ends;
// then the error says what was awaited and the last state check described.
func pollUntil(ctx context.Context, what string, check func() (done bool, state string, err error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		done, state, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %s)", what, ctx.Err(), state)
		case <-t.C:
		}
	}
}

// admin returns the connection slot of node n.
func (e *pgEngine) admin(n *topology.Node) *pgAdmin {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.nodes[n.Address]
	if a == nil {
		a = &pgAdmin{}
		e.nodes[n.Address] = a
	}
	return a
}

// do runs f on n's administrative connection, opening it first if needed. A connection that
// failed is closed and dropped, so the next step dials again.
func (e *pgEngine) do(ctx context.Context, n *topology.Node, step string, f func(ctx context.Context, c *pgx.Conn) error) error {
	if e.userErr != nil {
		return stepError(n, step, e.userErr)
	}
	ctx, cancel := withDeadline(ctx, defaultStepTimeout)
	defer cancel()
	a := e.admin(n)
	a.mu.Lock()
	defer a.mu.Unlock()
	// A kept connection may have died with a restart of the node since the last step: check it
	// first, so that a step runs on a live connection or not at all.
	if a.conn != nil && a.conn.Ping(ctx) != nil {
		a.conn.Close(context.Background())
		a.conn = nil
	}
	if a.conn == nil {
		c, err := e.connect(ctx, n)
		if err != nil {
			return connectError(n, step, err)
		}
		a.conn = c
	}
	err := f(ctx, a.conn)
	if err != nil && (a.conn.IsClosed() || ctx.Err() != nil) {
		a.conn.Close(context.Background())
		a.conn = nil
	}
	if err != nil {
		return stepError(n, step, err)
	}
	return nil
}

// connect dials n as the failover user.
func (e *pgEngine) connect(ctx context.Context, n *topology.Node) (*pgx.Conn, error) {
	host, port, err := net.SplitHostPort(n.Address)
	if err != nil {
		return nil, err
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", n.Address)
	}
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = host, uint16(pn)
	cfg.User, cfg.Password, cfg.Database = backendUser(e.user), e.user.BackendPassword.Reveal(), e.database
	cfg.ConnectTimeout = connectTimeout(e.cl)
	cfg.RuntimeParams = map[string]string{"application_name": "baton-failover"}
	cfg.Fallbacks = nil
	// The failover steps run a handful of statements: no server-side statement cache, which a
	// promotion or config reload would not invalidate anyway.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	health.PGConfigTLS(&cfg.Config, n.TLS())
	return pgx.ConnectConfig(ctx, cfg)
}

// Close implements Engine.
func (e *pgEngine) Close() {
	e.mu.Lock()
	nodes := e.nodes
	e.nodes = map[string]*pgAdmin{}
	e.mu.Unlock()
	for _, a := range nodes {
		a.mu.Lock()
		if a.conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			a.conn.Close(ctx)
			cancel()
			a.conn = nil
		}
		a.mu.Unlock()
	}
}

// pgInspectSQL reads role, fence, positions, timeline and WAL receiver in one round trip.
//
// Timeline: on a primary it is the timeline of the WAL being written, the first 8 hex digits of
// pg_walfile_name(pg_current_wal_lsn()). pg_control_checkpoint().timeline_id is not used there:
// after pg_promote it still shows the old timeline until the first checkpoint on the new one
// completes. On a replica it is the timeline its WAL receiver streams (received_tli), or, when no
// receiver runs (its primary is gone), the newest of the last restartpoint's and the minimum
// recovery point's timelines from the control file.
const pgInspectSQL = `SELECT r.rec,
  current_setting('default_transaction_read_only'),
  CASE WHEN r.rec THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
  pg_last_wal_receive_lsn()::text,
  CASE WHEN r.rec THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
  GREATEST((SELECT timeline_id FROM pg_control_checkpoint()),
    (SELECT min_recovery_end_timeline FROM pg_control_recovery()))::int8,
  w.received_tli::int8, w.sender_host, w.sender_port
FROM (SELECT pg_is_in_recovery() AS rec) r LEFT JOIN pg_stat_wal_receiver w ON true`

// Inspect implements Engine.
func (e *pgEngine) Inspect(ctx context.Context, n *topology.Node) (NodeInfo, error) {
	var info NodeInfo
	err := e.do(ctx, n, "inspect", func(ctx context.Context, c *pgx.Conn) error {
		var (
			rec                      bool
			dtro                     string
			applied                  string
			received, walFile, sHost pgtype.Text
			ctlTLI, recvTLI, sPort   pgtype.Int8
		)
		if err := c.QueryRow(ctx, pgInspectSQL).Scan(&rec, &dtro, &applied, &received, &walFile,
			&ctlTLI, &recvTLI, &sHost, &sPort); err != nil {
			return err
		}
		info = NodeInfo{InRecovery: rec, Writable: !rec && dtro == "off", Applied: applied, Received: applied}
		if rec {
			if c, ok := lsnCompare(applied, received.String); received.Valid && ok && c < 0 {
				info.Received = received.String
			}
			switch {
			case recvTLI.Valid && recvTLI.Int64 > 0:
				info.Timeline = uint32(recvTLI.Int64)
			case ctlTLI.Valid:
				info.Timeline = uint32(ctlTLI.Int64)
			}
			if sHost.Valid && sHost.String != "" && sPort.Valid {
				info.Source = net.JoinHostPort(sHost.String, strconv.FormatInt(sPort.Int64, 10))
			}
			return nil
		}
		if walFile.Valid && len(walFile.String) >= 8 {
			tli, err := strconv.ParseUint(walFile.String[:8], 16, 32)
			if err != nil {
				return fmt.Errorf("bad WAL file name %q", walFile.String)
			}
			info.Timeline = uint32(tli)
		}
		return nil
	})
	return info, err
}

// setSystem runs ALTER SYSTEM stmt and pg_reload_conf(), then waits until this session sees
// default_transaction_read_only = want. A backend sees a reload only after the postmaster has
// processed it, so from then on every new session starts with the new value too.
func pgSetSystem(ctx context.Context, c *pgx.Conn, stmt, want string) error {
	if _, err := c.Exec(ctx, stmt); err != nil {
		return err
	}
	if _, err := c.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	return pollUntil(ctx, "reload to default_transaction_read_only = "+want, func() (bool, string, error) {
		var v string
		if err := c.QueryRow(ctx, "SELECT current_setting('default_transaction_read_only')").Scan(&v); err != nil {
			return false, "", err
		}
		return v == want, "default_transaction_read_only = " + v, nil
	})
}

// fenceStandby names the standby a fenced primary waits for: one that never connects, so that no
// commit there is ever confirmed as replicated. The synchronous_standby_names value is that name,
// quoted, with the operator's own value (from postgresql.auto.conf) kept after a colon, so that
// Unfence can put it back: "baton_fenced:ANY 1 (a, b)". Without an own value it is
// "baton_fenced" (Unfence then resets the setting to postgresql.conf's value).
const fenceStandby = "baton_fenced"

// fencedStandbyNames is the synchronous_standby_names of a fenced primary whose
// postgresql.auto.conf held own (nil: none).
func fencedStandbyNames(own *string) string {
	name := fenceStandby
	if own != nil {
		name += ":" + *own
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// parseFencedStandbyNames reports whether ssn is a fence's synchronous_standby_names and, if so,
// the operator's value it keeps (nil: none).
func parseFencedStandbyNames(ssn string) (own *string, fenced bool) {
	if !strings.HasPrefix(ssn, `"`+fenceStandby) || !strings.HasSuffix(ssn, `"`) || len(ssn) < len(fenceStandby)+2 {
		return nil, false
	}
	rest := strings.ReplaceAll(ssn[1+len(fenceStandby):len(ssn)-1], `""`, `"`)
	if rest == "" {
		return nil, true
	}
	if rest[0] != ':' {
		return nil, false
	}
	v := rest[1:]
	return &v, true
}

// Fence implements Engine, in two layers that survive a restart (ALTER SYSTEM):
//   - default_transaction_read_only = on: the application's ordinary writes fail (25006);
//   - synchronous_standby_names = 'baton_fenced', a standby that never connects: a session that
//     asks for a write explicitly (SET default_transaction_read_only = off, BEGIN READ WRITE)
//     waits at COMMIT forever, so it is never told its write succeeded. (It could still opt out
//     with SET synchronous_commit = local, or see its commit as done, with a warning, by
//     cancelling the wait: a fence by configuration is not a STONITH. The proxy, which no longer
//     routes to the node, is the other half.) An operator's own value in postgresql.auto.conf is
//     kept inside the fence's value and put back by Unfence and Promote (fenceStandby).
//
// Then every client backend but its own is terminated, and Fence waits until they are gone.
func (e *pgEngine) Fence(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "fence", func(ctx context.Context, c *pgx.Conn) error {
		var cur string
		if err := c.QueryRow(ctx, "SELECT current_setting('synchronous_standby_names')").Scan(&cur); err != nil {
			return err
		}
		if _, fenced := parseFencedStandbyNames(cur); !fenced {
			// The value ALTER SYSTEM set earlier, if any (not postgresql.conf's, which RESET
			// brings back by itself).
			var own *string
			err := c.QueryRow(ctx, `SELECT setting FROM pg_file_settings WHERE name = 'synchronous_standby_names'
				AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`).Scan(&own)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("read synchronous_standby_names: %w", err)
			}
			if _, err := c.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = "+quoteLiteral(fencedStandbyNames(own))); err != nil {
				return err
			}
		}
		if err := pgSetSystem(ctx, c, "ALTER SYSTEM SET default_transaction_read_only = on", "on"); err != nil {
			return err
		}
		// Two statements: inside one WHERE clause the planner may call pg_terminate_backend
		// before the other conditions.
		rows, _ := c.Query(ctx, `SELECT pid FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`)
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("list client backends: %w", err)
		}
		if len(pids) == 0 {
			return nil
		}
		if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(p) FROM unnest($1::int4[]) p", pids); err != nil {
			return fmt.Errorf("terminate client backends: %w", err)
		}
		return pollUntil(ctx, "terminated backends to exit", func() (bool, string, error) {
			var left int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", pids).Scan(&left); err != nil {
				return false, "", err
			}
			return left == 0, fmt.Sprintf("%d of %d still running", left, len(pids)), nil
		})
	})
}

// Unfence implements Engine: both layers of Fence are undone.
func (e *pgEngine) Unfence(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "unfence", pgClearFence)
}

// pgClearFence undoes Fence: synchronous_standby_names gets back the operator's value (or
// postgresql.conf's), and default_transaction_read_only is reset. Without a fence it does
// nothing but the (harmless) reset.
func pgClearFence(ctx context.Context, c *pgx.Conn) error {
	var cur string
	if err := c.QueryRow(ctx, "SELECT current_setting('synchronous_standby_names')").Scan(&cur); err != nil {
		return err
	}
	if own, fenced := parseFencedStandbyNames(cur); fenced {
		q := "ALTER SYSTEM RESET synchronous_standby_names"
		if own != nil {
			q = "ALTER SYSTEM SET synchronous_standby_names = " + quoteLiteral(*own)
		}
		if _, err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	return pgSetSystem(ctx, c, "ALTER SYSTEM RESET default_transaction_read_only", "off")
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings on).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// WaitApplied implements Engine. On a node that is not in recovery it only checks that its
// current WAL position has reached pos. A replica whose WAL replay is paused fails at once.
func (e *pgEngine) WaitApplied(ctx context.Context, n *topology.Node, pos string) error {
	var want int64 = -1
	if pos != "" {
		var err error
		if want, err = health.ParseLSN(pos); err != nil {
			return stepError(n, "wait applied", err)
		}
	}
	ctx, cancel := withDeadline(ctx, e.applyTimeout())
	defer cancel()
	return e.do(ctx, n, "wait applied", func(ctx context.Context, c *pgx.Conn) error {
		return pollUntil(ctx, "replay to catch up", func() (bool, string, error) {
			var (
				rec, paused bool
				applied     string
				received    pgtype.Text
			)
			err := c.QueryRow(ctx, `SELECT pg_is_in_recovery(),
				CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
				pg_last_wal_receive_lsn()::text,
				pg_is_in_recovery() AND pg_is_wal_replay_paused()`).Scan(&rec, &applied, &received, &paused)
			if err != nil {
				return false, "", err
			}
			a, err := health.ParseLSN(applied)
			if err != nil {
				return false, "", err
			}
			state := "applied " + applied + ", received " + received.String
			if paused {
				return false, state, errors.New("WAL replay is paused (resume it with pg_wal_replay_resume())")
			}
			if rec && received.Valid {
				r, err := health.ParseLSN(received.String)
				if err != nil {
					return false, "", err
				}
				if a < r {
					return false, state, nil
				}
			}
			return a >= want, state + ", want " + pos, nil
		})
	})
}

// applyTimeout bounds WaitApplied when its ctx has no deadline.
func (e *pgEngine) applyTimeout() time.Duration { return applyTimeout(e.cl) }

func applyTimeout(cl *topology.Cluster) time.Duration {
	if d := cl.Failover.ApplyTimeout.D(); d > 0 {
		return d
	}
	return topology.DefaultApplyTimeout
}

// pgPromoteWait is the longest a promotion is waited for (less within ctx's deadline).
const pgPromoteWait = 60 * time.Second

// pgPromotePoll is how often the end of a promotion is checked. pg_promote(true) checks every
// 100 ms, which was most of the 105–130 ms a promotion took: the startup process itself is done
// in 10–30 ms.
const pgPromotePoll = 5 * time.Millisecond

// pgPromoteNow asks the node to leave recovery (pg_promote without waiting) and returns once it
// has, polling pg_is_in_recovery() every pgPromotePoll.
func pgPromoteNow(ctx context.Context, c *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, pgPromoteWait)
	defer cancel()
	var sent bool
	if err := c.QueryRow(ctx, "SELECT pg_promote(false)").Scan(&sent); err != nil {
		return err
	}
	if !sent {
		return errors.New("pg_promote: the promotion signal could not be sent")
	}
	t := time.NewTicker(pgPromotePoll)
	defer t.Stop()
	for {
		var rec bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("pg_promote: not promoted in time: %w", ctx.Err())
			}
			return err
		}
		if !rec {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg_promote: not promoted in time: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Promote implements Engine: pg_promote(false) and a wait for the end of recovery (60 s or less,
// within ctx; pgPromoteNow), then clears a
// fence the node may carry from an earlier life as primary, then checks that a new transaction is
// read-write and WAL can be written. Promoting a node that is already primary only does the
// latter two.
func (e *pgEngine) Promote(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "promote", func(ctx context.Context, c *pgx.Conn) error {
		var rec bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			return err
		}
		if rec {
			if err := pgPromoteNow(ctx, c); err != nil {
				return err
			}
		}
		if err := pgClearFence(ctx, c); err != nil {
			return fmt.Errorf("clear fence: %w", err)
		}
		var ro, lsn string
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), pg_current_wal_lsn()::text").
			Scan(&rec, &ro, &lsn); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if rec || ro != "off" {
			return fmt.Errorf("verify: still in recovery (%v) or read-only (transaction_read_only = %s; "+
				"is default_transaction_read_only set in postgresql.conf?)", rec, ro)
		}
		return nil
	})
}

// Repoint implements Engine: the host and port of replica's primary_conninfo are replaced by
// primary's (user, password, application_name and every other keyword are kept), the result is
// written with ALTER SYSTEM and the configuration reloaded, which restarts the WAL receiver.
// Repoint returns once the replica's WAL receiver streams from primary. A primary_slot_name, if
// the replica uses one, must exist on the new primary.
func (e *pgEngine) Repoint(ctx context.Context, replica, primary *topology.Node) error {
	host, port, err := net.SplitHostPort(primary.Address)
	if err != nil {
		return stepError(replica, "repoint to "+primary.Name, err)
	}
	// The replica must end up on the primary's timeline, not only connected to it.
	pinfo, err := e.Inspect(ctx, primary)
	if err != nil {
		return err
	}
	primaryTLI := pinfo.Timeline
	return e.do(ctx, replica, "repoint to "+primary.Name, func(ctx context.Context, c *pgx.Conn) error {
		var rec bool
		var conninfo, target string
		if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('primary_conninfo'),
			current_setting('recovery_target_timeline')`).Scan(&rec, &conninfo, &target); err != nil {
			return err
		}
		if !rec {
			return errors.New("the node is not in recovery: it cannot follow another primary")
		}
		if target != "latest" {
			if _, err := c.Exec(ctx, "ALTER SYSTEM SET recovery_target_timeline = 'latest'"); err != nil {
				return err
			}
			return fmt.Errorf("recovery_target_timeline is %q, so the replica cannot follow the new "+
				"primary's timeline; it is now set to 'latest' for the next restart: restart the replica", target)
		}
		next, err := replaceHostPort(conninfo, host, port)
		if err != nil {
			return fmt.Errorf("primary_conninfo: %w", err)
		}
		if next != conninfo {
			if _, err := c.Exec(ctx, "ALTER SYSTEM SET primary_conninfo = "+dollarQuote(next)); err != nil {
				return err
			}
			if _, err := c.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
				return err
			}
		}
		return pollUntil(ctx, "WAL receiver to stream from "+primary.Address+" on its timeline", func() (bool, string, error) {
			var status, sHost pgtype.Text
			var sPort, tli pgtype.Int8
			err := c.QueryRow(ctx, `SELECT w.status, w.sender_host, w.sender_port::int8, w.received_tli::int8
				FROM (SELECT 1) x LEFT JOIN pg_stat_wal_receiver w ON true`).Scan(&status, &sHost, &sPort, &tli)
			if err != nil {
				return false, "", err
			}
			if !status.Valid {
				return false, "no WAL receiver running", nil
			}
			src := net.JoinHostPort(sHost.String, strconv.FormatInt(sPort.Int64, 10))
			state := fmt.Sprintf("WAL receiver %s from %s, timeline %d", status.String, src, tli.Int64)
			if primaryTLI > 0 && tli.Int64 < int64(primaryTLI) {
				// It streams the old timeline up to the fork point and no further if it holds
				// WAL past that point (an old primary that resumed sent it more): it cannot follow.
				state += fmt.Sprintf(", the primary is on timeline %d (a replica that received WAL past the fork point "+
					"cannot follow it: see its log for \"forked off current database system timeline\"; rewind it with pg_rewind)", primaryTLI)
			}
			return status.String == "streaming" && health.SameEndpoint(src, primary.Address) && tli.Int64 >= int64(primaryTLI), state, nil
		})
	})
}

// Rejoin implements Engine: an old PostgreSQL primary needs pg_rewind and a restart with
// standby.signal, which an operator (or test/cluster's PGCluster.Rejoin) does offline.
func (e *pgEngine) Rejoin(_ context.Context, old, primary *topology.Node) error {
	return stepError(old, "rejoin to "+primary.Name, ErrUnsupported)
}

// Compare implements Engine on pg_lsn text. Timelines are not part of an LSN: the caller
// compares positions read on the same timeline.
func (e *pgEngine) Compare(a, b string) (int, bool) { return lsnCompare(a, b) }

// lsnCompare orders two pg_lsn texts; ok is false when either does not parse.
func lsnCompare(a, b string) (int, bool) {
	x, err1 := health.ParseLSN(a)
	y, err2 := health.ParseLSN(b)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	switch {
	case x < y:
		return -1, true
	case x > y:
		return 1, true
	}
	return 0, true
}

// Distance implements Engine: a − b in bytes, 0 when b is ahead, -1 when either is not pg_lsn.
func (e *pgEngine) Distance(a, b string) int64 {
	d, ok := health.LSNDistance(a, b)
	if !ok {
		return -1
	}
	return max(0, d)
}

// dollarQuote quotes s as a SQL dollar-quoted string constant, whose meaning does not depend on
// standard_conforming_strings.
func dollarQuote(s string) string {
	tag := "$baton$"
	for i := 0; strings.Contains(s, tag); i++ {
		tag = "$baton" + strconv.Itoa(i) + "$"
	}
	return tag + s + tag
}

// replaceHostPort returns conninfo with host and port replaced and hostaddr removed (hostaddr
// would override host). Both libpq forms are understood: keyword/value pairs and
// postgresql:// URIs. An empty conninfo yields "host=… port=…".
func replaceHostPort(conninfo, host, port string) (string, error) {
	if strings.HasPrefix(conninfo, "postgresql://") || strings.HasPrefix(conninfo, "postgres://") {
		u, err := url.Parse(conninfo)
		if err != nil {
			return "", errors.New("unparsable URI") // url's error would quote the password
		}
		u.Host = net.JoinHostPort(host, port)
		q := u.Query()
		q.Del("hostaddr")
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	pairs, err := health.ParseConninfo(conninfo)
	if err != nil {
		return "", err
	}
	out := make([]health.ConninfoPair, 0, len(pairs)+2)
	seenHost, seenPort := false, false
	for _, p := range pairs {
		switch p.Key {
		case "hostaddr":
			continue
		case "host":
			if seenHost {
				continue
			}
			p.Value, seenHost = host, true
		case "port":
			if seenPort {
				continue
			}
			p.Value, seenPort = port, true
		}
		out = append(out, p)
	}
	if !seenHost {
		out = append(out, health.ConninfoPair{Key: "host", Value: host})
	}
	if !seenPort {
		out = append(out, health.ConninfoPair{Key: "port", Value: port})
	}
	return health.FormatConninfo(out), nil
}
