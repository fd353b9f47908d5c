package failover

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// An old primary that was hung or cut off when it was replaced may have written changes the new
// primary never received: it has diverged. It cannot follow the new primary as it is —
// PostgreSQL needs pg_rewind (which throws those changes away), MySQL/MariaDB a rebuild — and
// baton must not re-attach it. The coordinator checks old primaries that answer again and
// publishes what it finds (topology.Divergence), which status, the API and `baton rejoin` show.

// Diverger is implemented by engines that can tell whether a node holds changes primary lacks.
type Diverger interface {
	// Diverged reports node n's divergence from primary: nil when n does not hold changes
	// primary lacks (or is a replica that follows a primary already).
	Diverged(ctx context.Context, n, primary *topology.Node) (*topology.Divergence, error)
}

var (
	_ Diverger = (*pgEngine)(nil)
	_ Diverger = (*myEngine)(nil)
)

// pgHistoryEntry is one line of a PostgreSQL timeline history file: timeline tli ended (and its
// successor forked) at lsn.
type pgHistoryEntry struct {
	tli uint32
	lsn string
}

// parsePGHistory parses a timeline history file ("1\t0/3000158\tno recovery target specified"
// per line; comments and blank lines skipped).
func parsePGHistory(s string) ([]pgHistoryEntry, error) {
	var out []pgHistoryEntry
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("bad timeline history line %q", line)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad timeline history line %q", line)
		}
		if _, ok := lsnCompare(f[1], f[1]); !ok {
			return nil, fmt.Errorf("bad LSN in timeline history line %q", line)
		}
		out = append(out, pgHistoryEntry{tli: uint32(tli), lsn: f[1]})
	}
	return out, nil
}

// pgForkPoint returns where timeline tli ended in history ("" when history does not list it).
func pgForkPoint(history []pgHistoryEntry, tli uint32) string {
	for _, e := range history {
		if e.tli == tli {
			return e.lsn
		}
	}
	return ""
}

// Diverged implements Diverger: n (not in recovery) has diverged when its WAL on timeline T
// goes past the point where the primary's timeline history says T ended.
func (e *pgEngine) Diverged(ctx context.Context, n, primary *topology.Node) (*topology.Divergence, error) {
	old, err := e.Inspect(ctx, n)
	if err != nil || old.InRecovery {
		return nil, err
	}
	cur, err := e.Inspect(ctx, primary)
	if err != nil {
		return nil, err
	}
	if cur.InRecovery || cur.Timeline <= old.Timeline {
		return nil, nil // not (yet) a primary on a later timeline: nothing to compare with
	}
	var history, dataDir string
	err = e.do(ctx, primary, "read the timeline history", func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT pg_read_file('pg_wal/' || $1 || '.history')", fmt.Sprintf("%08X", cur.Timeline)).Scan(&history)
	})
	if err != nil {
		return nil, err
	}
	hist, err := parsePGHistory(history)
	if err != nil {
		return nil, stepError(primary, "read the timeline history", err)
	}
	fork := pgForkPoint(hist, old.Timeline)
	if fork == "" {
		return nil, stepError(primary, "read the timeline history", fmt.Errorf("timeline %d of node %s is not in the history of timeline %d", old.Timeline, n.Name, cur.Timeline))
	}
	if c, ok := lsnCompare(old.Applied, fork); !ok || c <= 0 {
		return nil, nil
	}
	e.do(ctx, n, "read the data directory", func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir)
	})
	if dataDir == "" {
		dataDir = "<data directory of " + n.Name + ">"
	}
	host, port, _ := net.SplitHostPort(primary.Address)
	user := "<superuser>"
	if u, err := failoverUser(e.cl); err == nil {
		user = backendUser(u)
	}
	return &topology.Divergence{
		Node: n.Name, Primary: primary.Name, Since: time.Now().UTC(),
		Detail: fmt.Sprintf("WAL end %s on timeline %d is %d bytes past the fork point %s where %s's timeline %d began",
			old.Applied, old.Timeline, e.Distance(old.Applied, fork), fork, primary.Name, cur.Timeline),
		Steps: fmt.Sprintf("The changes past %s were never acknowledged through baton and are not on %s. To make %s a replica of %s (on %s's host, as the postgres user):\n"+
			"1. pg_ctl -D %s stop -m fast\n"+
			"2. pg_rewind --target-pgdata=%s --source-server='host=%s port=%s user=%s dbname=postgres' --write-recovery-conf --progress\n"+
			"   (keep a copy of the data directory first if those changes matter; pg_rewind discards them)\n"+
			"3. check primary_conninfo in %s/postgresql.auto.conf (user and password of a replication account), then pg_ctl -D %s start\n"+
			"baton sees it as a replica once it streams from %s.",
			fork, primary.Name, n.Name, primary.Name, n.Name, dataDir, dataDir, host, port, user, dataDir, dataDir, primary.Name),
	}, nil
}

// Diverged implements Diverger: n has diverged when its GTID position holds transactions the
// primary's binary log lacks (a replica streaming from the primary is not checked).
func (e *myEngine) Diverged(ctx context.Context, n, primary *topology.Node) (*topology.Divergence, error) {
	info, err := e.Inspect(ctx, n)
	if err != nil {
		return nil, err
	}
	if info.Source != "" && info.Source == primary.Address {
		return nil, nil
	}
	var srcPos, srcState string
	var fl myFlavor
	err = e.do(ctx, primary, "read the primary's position", func(ctx context.Context, c *sql.Conn, f myFlavor) error {
		fl = f
		var err error
		srcPos, srcState, err = mySourcePos(ctx, c, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	why, diverged := myDiverged(fl, info.Applied, srcState)
	if !diverged {
		return nil, nil
	}
	host, port, _ := net.SplitHostPort(primary.Address)
	shown := srcPos
	if shown == "" {
		shown = "no GTIDs"
	}
	return &topology.Divergence{
		Node: n.Name, Primary: primary.Name, Since: time.Now().UTC(),
		Detail: fmt.Sprintf("GTID position %s holds transactions %s lacks (%s has %s): %s", info.Applied, primary.Name, primary.Name, shown, why),
		Steps: fmt.Sprintf("Those transactions were never acknowledged through baton and are not on %s; %s cannot replicate from it as it is. To bring %s back as a replica of %s:\n"+
			"1. keep what only %s has, if it matters: mariadb-binlog on its binary logs from the GTIDs past %s (e.g. --start-position=<first lacking GTID>)\n"+
			"2. rebuild it from %s: mariadb-backup --backup --target-dir=DIR on %s's host, mariadb-backup --prepare --target-dir=DIR, stop %s, replace its data directory (mariadb-backup --copy-back), start it\n"+
			"3. on %s: SET GLOBAL gtid_slave_pos = '<GTID from DIR/mariadb_backup_binlog_info>'; CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%s, MASTER_USE_GTID=slave_pos, ...; START SLAVE\n"+
			"   (or `baton rejoin --cluster %s --node %s` once it no longer holds transactions %s lacks)",
			primary.Name, n.Name, n.Name, primary.Name, n.Name, srcPos, primary.Name, primary.Name, n.Name, n.Name, host, port, e.cl.Name, n.Name, primary.Name),
	}, nil
}

// divergeEvery is how often the coordinator checks a node that may have diverged.
const divergeEvery = 5 * time.Second

// checkDiverged checks, at most every divergeEvery per node, the nodes that answer but neither
// are the epoch's primary nor stream from anything (an old primary, fenced or not) and
// publishes what it finds; a node that streams again, or is gone from the configuration, has
// its divergence withdrawn.
func (m *Manager) checkDiverged(ctx context.Context, cl *topology.Cluster, snap *topology.Snapshot, st topology.ClusterState, co *topology.Coordinator) {
	dv, ok := m.eng.(Diverger)
	p := nodeByName(cl, st.Primary)
	if !ok || p == nil {
		return
	}
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		node := nodeByName(cl, n.Name)
		if !n.Up || node == nil || n.Name == st.Primary {
			continue
		}
		m.mu.Lock()
		had := m.diverged[n.Name]
		m.mu.Unlock()
		if n.Role == topology.RoleReplica && n.Streaming {
			if had != "" {
				m.publishDiverged(ctx, co, n.Name, nil)
			}
			continue
		}
		m.mu.Lock()
		due := time.Since(m.divergeAt[n.Name]) >= divergeEvery
		if due {
			m.divergeAt[n.Name] = time.Now()
		}
		m.mu.Unlock()
		if !due {
			continue
		}
		c, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
		d, err := dv.Diverged(c, node, p)
		cancel()
		if err != nil {
			continue
		}
		m.publishDiverged(ctx, co, n.Name, d)
	}
}

// publishDiverged records and publishes node's divergence (nil: none) when it changed.
func (m *Manager) publishDiverged(ctx context.Context, co *topology.Coordinator, node string, d *topology.Divergence) {
	detail := ""
	if d != nil {
		detail = d.Detail
	}
	m.mu.Lock()
	same := m.diverged[node] == detail
	m.mu.Unlock()
	if same {
		return
	}
	if err := co.SetDiverged(ctx, node, d); err != nil {
		return
	}
	m.mu.Lock()
	m.diverged[node] = detail
	m.mu.Unlock()
	if d != nil {
		m.log.Error("old primary diverged, needs rewind", "cluster", co.Cluster(), "node", node, "primary", d.Primary, "detail", d.Detail)
	} else {
		m.log.Info("node no longer diverged", "cluster", co.Cluster(), "node", node)
	}
}

// Detacher is implemented by engines whose replicas keep receiving from an old primary that
// resumes in the middle of a failover (MySQL/MariaDB: the IO thread reconnects and fetches
// what the old primary commits on resuming, which the new primary never gets, so the replica
// cannot be re-pointed). The coordinator detaches every replica before it chooses the
// candidate: their received positions stay as they are, and the re-point attaches them to the
// new primary; after a failover that promoted nothing it attaches them back.
type Detacher interface {
	// Detach stops replica n receiving from its source; what it received is still applied.
	Detach(ctx context.Context, n *topology.Node) error
	// Reattach undoes Detach.
	Reattach(ctx context.Context, n *topology.Node) error
}

var _ Detacher = (*myEngine)(nil)

// Detach implements Detacher: the IO thread is killed (it may be blocked on a hung primary)
// and replication stopped, then the SQL thread alone started again to apply the relay log.
func (e *myEngine) Detach(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "detach from the old primary", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		st, err := readStatus(ctx, c, fl)
		if err != nil || st == nil {
			return err // not a replica: nothing to detach
		}
		// STOP SLAVE right after the KILL is what Promote does, and it returns at once on a
		// hung primary; STOP SLAVE IO_THREAD there waited 2 s in tests. The SQL thread is
		// started again to apply what was received.
		killReceiver(ctx, c, fl)
		qs := []string{"STOP SLAVE", "START SLAVE SQL_THREAD"}
		if fl == myMySQL {
			qs = []string{"STOP REPLICA", "START REPLICA SQL_THREAD"}
		}
		for _, q := range qs {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
}

// Reattach implements Detacher.
func (e *myEngine) Reattach(ctx context.Context, n *topology.Node) error {
	return e.do(ctx, n, "reattach", func(ctx context.Context, c *sql.Conn, fl myFlavor) error {
		st, err := readStatus(ctx, c, fl)
		if err != nil || st == nil {
			return err
		}
		q := "START SLAVE IO_THREAD"
		if fl == myMySQL {
			q = "START REPLICA IO_THREAD"
		}
		_, err = c.ExecContext(ctx, q)
		return err
	})
}

// detachWait bounds how long a failover waits for the replicas to detach. A replica whose IO
// thread is stuck on a hung primary may take 2 s to stop (MariaDB re-signals a thread that
// ignored the first KILL every 2 s); the server finishes the stop by itself after the client
// gave up, which is all the detach is for, so the promotion need not wait for it.
const detachWait = 300 * time.Millisecond

// detachAll detaches every node except old, concurrently, waiting at most detachWait, and
// returns the nodes it asked (reattachAll undoes it on all of them).
func (m *Manager) detachAll(ctx context.Context, cl *topology.Cluster, old string) []*topology.Node {
	d, ok := m.eng.(Detacher)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, min(cl.Failover.StepTimeout.D(), detachWait))
	defer cancel()
	var out []*topology.Node
	var wg sync.WaitGroup
	for _, n := range cl.Nodes {
		if n.Name == old {
			continue
		}
		out = append(out, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Detach(ctx, n)
		}()
	}
	wg.Wait()
	return out
}

// reattachAll undoes detachAll after a failover that promoted nothing.
func (m *Manager) reattachAll(ctx context.Context, cl *topology.Cluster, nodes []*topology.Node) {
	d, ok := m.eng.(Detacher)
	if !ok || len(nodes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); d.Reattach(ctx, n) }()
	}
	wg.Wait()
}
