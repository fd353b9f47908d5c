package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Rejoin attaches old, a former primary (killed, stopped or still
// running), as a streaming replica of primary, the node promoted in its
// place:
//
//   - old is stopped (fast shutdown) if it runs;
//   - primary runs CHECKPOINT, so that its control file shows the timeline
//     it was promoted to (pg_rewind reads the timeline from there);
//   - pg_rewind --target-pgdata=<old> --source-server=<primary> rewinds old
//     to the point where the timelines forked (after crash recovery in
//     single-user mode when old was killed);
//   - old's own baton_node.conf is written again (pg_rewind copied
//     primary's), primary_conninfo in its postgresql.auto.conf is replaced
//     by one pointing at primary, in the form pg_basebackup -R writes, and
//     standby.signal is created;
//   - old is started and Rejoin returns once primary's pg_stat_replication
//     shows it streaming.
//
// pg_rewind needs wal_log_hints (always on in these clusters) and
// full_page_writes on primary: a cluster started with Fast must add
// "full_page_writes = on" to PGOptions.Settings.
//
// On success c.Primary becomes primary and c.Replicas the other nodes, in
// their original order, so that Nodes and Stop follow the new roles. Rejoin
// must not run concurrently with other calls that read those fields.
func (c *PGCluster) Rejoin(ctx context.Context, old, primary *PGNode) error {
	if old == primary || old.c != c || primary.c != c {
		return errors.New("cluster: Rejoin needs two different nodes of this cluster")
	}
	if err := old.Stop(); err != nil {
		return fmt.Errorf("cluster: rejoin %s: %w", old.Name, err)
	}
	if err := checkpointSource(ctx, primary); err != nil {
		return fmt.Errorf("cluster: rejoin %s: %w", old.Name, err)
	}
	src := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", primary.host(), primary.Port)
	cmd := c.env.command(ctx, c.BaseDir, "pg_rewind", "--target-pgdata="+old.DataDir,
		"--source-server="+src, "--no-sync")
	cmd.Env = append(cmd.Env, "PGPASSWORD="+c.Opts.Password) // not on the command line
	began := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: rejoin %s: pg_rewind: %w: %s", old.Name, err, strings.TrimSpace(string(out)))
	}
	c.Opts.Logf("cluster: %s: pg_rewind from %s took %v", old.Name, primary.Name,
		time.Since(began).Round(time.Millisecond))
	if err := c.env.writeFile(filepath.Join(old.DataDir, nodeConfFile), nodeConf(old)); err != nil {
		return err
	}
	if err := c.followConf(old, primary); err != nil {
		return err
	}
	if err := c.env.writeFile(filepath.Join(old.DataDir, "standby.signal"), ""); err != nil {
		return err
	}
	if err := old.Start(ctx); err != nil {
		return fmt.Errorf("cluster: rejoin %s: %w", old.Name, err)
	}
	if err := waitNodeStreaming(ctx, primary, old); err != nil {
		return err
	}
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	nodes := c.Nodes()
	c.Primary, c.Replicas = primary, nil
	for _, n := range nodes {
		if n != primary {
			c.Replicas = append(c.Replicas, n)
		}
	}
	return nil
}

// checkpointSource makes the control file of a freshly promoted node show
// its new timeline, and checks full_page_writes, which pg_rewind needs.
func checkpointSource(ctx context.Context, n *PGNode) error {
	conn, err := pgx.Connect(ctx, n.url("postgres", n.c.Opts.Password, "postgres"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", n.Name, err)
	}
	defer conn.Close(context.Background())
	var fpw string
	if err := conn.QueryRow(ctx, "SHOW full_page_writes").Scan(&fpw); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if fpw != "on" {
		return fmt.Errorf("%s: pg_rewind needs full_page_writes = on (PGOptions.Fast turns it off; "+
			"add \"full_page_writes = on\" to PGOptions.Settings)", n.Name)
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("%s: CHECKPOINT: %w", n.Name, err)
	}
	return nil
}

// followConf replaces primary_conninfo in n's postgresql.auto.conf by one
// pointing at primary, as the superuser, the way pg_basebackup -R does.
func (c *PGCluster) followConf(n, primary *PGNode) error {
	path := filepath.Join(n.DataDir, "postgresql.auto.conf")
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster: %w", err)
	}
	var keep []string
	for l := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		if k, _, _ := strings.Cut(strings.TrimSpace(l), "="); strings.TrimSpace(k) == "primary_conninfo" {
			continue
		}
		if l != "" {
			keep = append(keep, l)
		}
	}
	conninfo := fmt.Sprintf("user=postgres password=%s host=%s port=%d sslmode=disable",
		connQuote(c.Opts.Password), primary.host(), primary.Port)
	keep = append(keep, "primary_conninfo = "+confQuote(conninfo))
	return c.env.writeFile(path, strings.Join(keep, "\n")+"\n")
}

// waitNodeStreaming polls primary's pg_stat_replication until r's WAL
// receiver (application_name = r.Name) is streaming.
func waitNodeStreaming(ctx context.Context, primary, r *PGNode) error {
	conn, err := pgx.Connect(ctx, primary.SuperURL())
	if err != nil {
		return fmt.Errorf("cluster: connect to %s: %w", primary.Name, err)
	}
	defer conn.Close(context.Background())
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication "+
			"WHERE application_name = $1 AND state = 'streaming'", r.Name).Scan(&n)
		if err != nil {
			return fmt.Errorf("cluster: %s: query pg_stat_replication: %w", primary.Name, err)
		}
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s does not stream from %s: %w", r.Name, primary.Name, ctx.Err())
		case <-t.C:
		}
	}
}

// socketDir holds the unix sockets of every node (.s.PGSQL.<port>). It is
// outside the data directories because pg_rewind --source-server copies
// every file of the source's data directory it can list, and fails on a
// socket ("could not open file ... No such device or address").
func (c *PGCluster) socketDir() string { return filepath.Join(c.BaseDir, "sockets") }

// makeSocketDir creates socketDir, accessible to the server user only:
// local connections are trusted.
func (c *PGCluster) makeSocketDir() error {
	if err := os.Mkdir(c.socketDir(), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cluster: %w", err)
	}
	return c.env.own(c.socketDir())
}
