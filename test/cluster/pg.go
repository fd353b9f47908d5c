package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxSocketPath is the longest unix socket path the kernel accepts
// (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// portAttempts bounds the retries when a port chosen as free is taken by
// someone else before the postmaster binds it.
const portAttempts = 3

// PGCluster is a running primary with its streaming replicas. Its fields
// do not change after StartPG returns; Stop may be called from any
// goroutine and more than once.
type PGCluster struct {
	Primary  *PGNode
	Replicas []*PGNode
	Opts     PGOptions // with defaults filled in
	BaseDir  string
	// TLS holds the cluster's CA and certificates (<BaseDir>/tls), also when no node uses
	// them; the client certificate's CN is Opts.AppUser.
	TLS *TLSFiles

	env        *runEnv
	createdDir bool // BaseDir came from os.MkdirTemp: Stop removes it

	stopMu  sync.Mutex
	stopped bool
	stopErr error
}

// NodeLog is the tail of one node's server log.
type NodeLog struct {
	Node string
	Tail string
}

// StartError is returned by StartPG when the cluster could not start. It
// carries the tails of the server logs, which are gone when StartPG removed
// its temporary BaseDir.
type StartError struct {
	Err  error
	Logs []NodeLog
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// logTailBytes is how much of each server log a StartError keeps.
const logTailBytes = 4 << 10

// StartPG creates and starts a primary and o.Replicas streaming replicas,
// and returns once every replica streams from the primary and accepts
// connections. On error nothing is left running and a temporary BaseDir is
// removed; once BaseDir exists, the error is a *StartError. A given BaseDir
// must not hold the nodes of an earlier cluster.
func StartPG(ctx context.Context, o PGOptions) (c *PGCluster, err error) {
	o = o.withDefaults()
	began := time.Now()
	bin, err := PGBinDir()
	if err != nil {
		return nil, err
	}
	u, err := lookupServerUser()
	if err != nil {
		return nil, err
	}
	c = &PGCluster{Opts: o, BaseDir: o.BaseDir}
	if c.BaseDir == "" {
		if c.BaseDir, err = os.MkdirTemp("", "baton-pg-"); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.createdDir = true
	} else if err := os.MkdirAll(c.BaseDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if c.BaseDir, err = filepath.Abs(c.BaseDir); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.env = &runEnv{bin: bin, user: u, base: c.BaseDir, logf: o.Logf}
	started := c // "return nil, err" clears c before this deferred function runs
	defer func() {
		if err != nil {
			err = started.abort(err)
			c = nil
		}
	}()
	if err := c.env.own(c.BaseDir); err != nil {
		return nil, err
	}
	if err := checkTraversable(c.BaseDir, u); err != nil {
		return nil, err
	}
	if err := c.makeSocketDir(); err != nil {
		return nil, err
	}
	if err := c.makeNodes(); err != nil {
		return nil, err
	}
	if err := c.makeTLS(); err != nil {
		return nil, err
	}
	o.Logf("cluster: PostgreSQL from %s in %s (servers run as %s)", bin, c.BaseDir, c.runAsName())
	if err := c.initPrimary(ctx); err != nil {
		return nil, err
	}
	if err := c.eachReplica(func(r *PGNode) error { return c.startReplica(ctx, r) }); err != nil {
		return nil, err
	}
	if err := c.waitStreaming(ctx); err != nil {
		return nil, err
	}
	if err := c.setSyncStandbys(ctx); err != nil {
		return nil, err
	}
	o.Logf("cluster: primary %s and %d replicas ready in %v", c.Primary.Addr(), len(c.Replicas),
		time.Since(began).Round(time.Millisecond))
	return c, nil
}

// abort stops whatever started, keeps the log tails and removes a
// temporary BaseDir.
func (c *PGCluster) abort(cause error) error {
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

func (c *PGCluster) runAsName() string {
	if c.env.user != nil {
		return c.env.user.name
	}
	return "the current user"
}

// makeNodes names the nodes and picks their ports.
func (c *PGCluster) makeNodes() error {
	taken := map[int]bool{}
	mk := func(i int, name string) (*PGNode, error) {
		n := &PGNode{Name: name, DataDir: filepath.Join(c.BaseDir, name), c: c, env: c.env,
			TLS: tlsFor(name, c.Opts.NoTLS, c.Opts.NoTLSNodes)}
		if sock := filepath.Join(n.DataDir, ".s.PGSQL.65535"); len(sock) > maxSocketPath {
			return nil, fmt.Errorf("cluster: BaseDir %s is too long for a unix socket path "+
				"(%d > %d bytes): use a shorter BaseDir", c.BaseDir, len(sock), maxSocketPath)
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

// initPrimary runs initdb, writes the configuration, starts the primary and
// creates the application role and database.
func (c *PGCluster) initPrimary(ctx context.Context) error {
	p, e := c.Primary, c.env
	began := time.Now()
	pwfile := filepath.Join(c.BaseDir, ".pwfile")
	if err := e.writeFile(pwfile, c.Opts.Password+"\n"); err != nil {
		return err
	}
	err := e.run(ctx, "initdb", "-D", p.DataDir, "-U", "postgres", "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions")
	os.Remove(pwfile)
	if err != nil {
		return err
	}
	c.Opts.Logf("cluster: primary: initdb took %v", time.Since(began).Round(time.Millisecond))
	if err := appendFile(filepath.Join(p.DataDir, "postgresql.conf"), commonConf(c.Opts)); err != nil {
		return err
	}
	hba := hbaConf
	if len(c.Opts.HBA) > 0 {
		hba = strings.Join(c.Opts.HBA, "\n") + "\n" + hba
	}
	if c.Opts.Lab != nil {
		hba += hbaNetns
	}
	if err := e.writeFile(filepath.Join(p.DataDir, "pg_hba.conf"), hba); err != nil {
		return err
	}
	if err := c.startFirst(ctx, p); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, p.url("postgres", c.Opts.Password, "postgres"))
	if err != nil {
		return fmt.Errorf("cluster: connect to primary: %w", err)
	}
	defer conn.Close(context.Background())
	stmts := []string{
		"CREATE ROLE " + sqlIdent(c.Opts.AppUser) + " LOGIN PASSWORD " + sqlLiteral(c.Opts.AppPassword),
		"CREATE DATABASE " + sqlIdent(c.Opts.AppDB) + " OWNER " + sqlIdent(c.Opts.AppUser),
	}
	if c.Opts.AppMonitor {
		stmts = append(stmts, "GRANT pg_monitor TO "+sqlIdent(c.Opts.AppUser))
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("cluster: create application role and database: %w", err)
		}
	}
	return nil
}

// startReplica clones the primary with pg_basebackup and starts the copy.
func (c *PGCluster) startReplica(ctx context.Context, r *PGNode) error {
	p := c.Primary
	conninfo := fmt.Sprintf("host=%s port=%d user=postgres password=%s", p.host(), p.Port,
		connQuote(c.Opts.Password))
	began := time.Now()
	if err := c.env.run(ctx, "pg_basebackup", "-D", r.DataDir, "-d", conninfo, "-R",
		"-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return fmt.Errorf("cluster: clone %s: %w", r.Name, err)
	}
	c.Opts.Logf("cluster: %s: pg_basebackup took %v", r.Name, time.Since(began).Round(time.Millisecond))
	return c.startFirst(ctx, r)
}

// startFirst writes the node's own configuration and starts it, moving to
// another free port when its port was taken meanwhile.
func (c *PGCluster) startFirst(ctx context.Context, n *PGNode) error {
	for attempt := 1; ; attempt++ {
		if err := c.env.writeFile(filepath.Join(n.DataDir, nodeConfFile), nodeConf(n)); err != nil {
			return err
		}
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

// eachReplica runs f for every replica concurrently and joins the errors.
func (c *PGCluster) eachReplica(f func(*PGNode) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Replicas))
	for i, r := range c.Replicas {
		wg.Go(func() { errs[i] = f(r) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitStreaming polls the primary's pg_stat_replication until every
// replica's walreceiver (application_name = cluster_name = node name) is
// 'streaming'.
func (c *PGCluster) waitStreaming(ctx context.Context) error {
	if len(c.Replicas) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, c.Primary.SuperURL())
	if err != nil {
		return fmt.Errorf("cluster: connect to primary: %w", err)
	}
	defer conn.Close(context.Background())
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		rows, _ := conn.Query(ctx,
			"SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("cluster: query pg_stat_replication: %w", err)
		}
		missing := 0
		for _, r := range c.Replicas {
			if !slices.Contains(names, r.Name) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: %d replicas not streaming (streaming: %v): %w",
				missing, names, ctx.Err())
		case <-t.C:
		}
	}
}

// Nodes returns the primary followed by the replicas.
func (c *PGCluster) Nodes() []*PGNode {
	return append([]*PGNode{c.Primary}, c.Replicas...)
}

// Stop shuts every node down (replicas first, then the primary; fast
// shutdown) and removes BaseDir if StartPG created it. Later calls return
// the first call's result.
func (c *PGCluster) Stop() error {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopped {
		return c.stopErr
	}
	c.stopped = true
	errs := []error{c.eachReplica(func(r *PGNode) error { return r.Stop() })}
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

// DumpLogs passes the tail of each node's server log to logf.
func (c *PGCluster) DumpLogs(logf func(format string, args ...any)) {
	for _, n := range c.Nodes() {
		logf("--- tail of the %s server log (%s) ---\n%s", n.Name, n.LogPath(), n.LogTail(logTailBytes))
	}
}

// appendFile appends data to an existing file, keeping its owner and mode.
func appendFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return fmt.Errorf("cluster: %w", err)
	}
	return f.Close()
}

// setSyncStandbys applies Opts.SyncStandbys on the primary (ALTER SYSTEM,
// so it survives restarts) and waits until the primary reports a
// synchronous or quorum standby.
func (c *PGCluster) setSyncStandbys(ctx context.Context) error {
	if c.Opts.SyncStandbys == "" {
		return nil
	}
	conn, err := pgx.Connect(ctx, c.Primary.SuperURL())
	if err != nil {
		return fmt.Errorf("cluster: connect to primary: %w", err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		"ALTER SYSTEM SET synchronous_standby_names = " + sqlLiteral(c.Opts.SyncStandbys),
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("cluster: synchronous_standby_names: %w", err)
		}
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication "+
			"WHERE sync_state IN ('sync', 'quorum')").Scan(&n)
		if err != nil {
			return fmt.Errorf("cluster: query pg_stat_replication: %w", err)
		}
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: no synchronous standby for %q: %w", c.Opts.SyncStandbys, ctx.Err())
		case <-t.C:
		}
	}
}
