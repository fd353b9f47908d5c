//go:build linux

package failovertest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/baton-proxy/baton/failover"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// TestPGRepointPastFork: a standby that received WAL past the new timeline's fork point cannot
// follow the new primary, and Repoint says so instead of reporting success. The primary hangs
// (SIGSTOP of all its processes), replica1 is promoted, the old primary resumes and commits,
// and replica2, still streaming from it, receives that commit; re-pointed to replica1 it streams
// the old timeline up to the fork point and no further. Before Repoint checked the timeline it
// returned nil here. (A "detach" of every standby before the promotion would avoid the hazard;
// on PostgreSQL 15 it made every promotion slower, so baton reports it instead.)
func TestPGRepointPastFork(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{Fast: true})
	cl := &topology.Cluster{Name: "pg", Engine: topology.EnginePostgres, Database: c.Opts.AppDB,
		Users:    []*topology.User{{Name: "postgres", BackendUser: "postgres", BackendPassword: topology.Secret(c.Opts.Password)}},
		Failover: topology.Failover{User: "postgres"},
		Pool:     topology.Pool{ConnectTimeout: topology.Duration(5 * time.Second)}}
	nodes := map[*cluster.PGNode]*topology.Node{}
	for _, n := range c.Nodes() {
		tn := &topology.Node{Name: n.Name, Address: n.Addr()}
		cl.Nodes = append(cl.Nodes, tn)
		nodes[n] = tn
	}
	e := failover.NewPG(cl)
	t.Cleanup(e.Close)
	old, cand, other := c.Primary, c.Replicas[0], c.Replicas[1]

	pgExec(t, old, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	lsn := pgValue(t, old, "SELECT pg_current_wal_insert_lsn()::text")
	for _, r := range c.Replicas {
		cluster.Eventually(t, 10*time.Second, r.Name+" replays "+lsn, func() (bool, error) {
			v, err := pgValueErr(t.Context(), r, "SELECT (pg_last_wal_replay_lsn() >= $1::pg_lsn)::text", lsn)
			return v == "true", err
		})
	}
	resume := stopTree(t, old)
	if err := e.Promote(t.Context(), nodes[cand]); err != nil {
		t.Fatalf("Promote %s: %v", cand.Name, err)
	}
	// The old primary resumes and commits, as a transaction in flight when it hung would.
	resume()
	pgExec(t, old, "INSERT INTO t VALUES (2)")
	late := pgValue(t, old, "SELECT pg_current_wal_insert_lsn()::text")
	cluster.Eventually(t, 10*time.Second, other.Name+" receives the old primary's late WAL", func() (bool, error) {
		v, err := pgValueErr(t.Context(), other, "SELECT (pg_last_wal_receive_lsn() >= $1::pg_lsn)::text", late)
		return v == "true", err
	})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err := e.Repoint(ctx, nodes[other], nodes[cand])
	if err == nil {
		t.Fatalf("Repoint of %s, which holds WAL past the fork point, reported success", other.Name)
	}
	if !strings.Contains(err.Error(), "timeline") {
		t.Errorf("Repoint error does not explain the timeline: %v", err)
	}
	t.Logf("Repoint of %s: %v", other.Name, err)
	if log := other.LogTail(64 << 10); !strings.Contains(log, "forked off current database system timeline") &&
		!strings.Contains(log, "not in this server's history") {
		t.Errorf("%s's log does not show the refused timeline:\n%s", other.Name, log)
	}
}

func pgValueErr(ctx context.Context, n *cluster.PGNode, q string, args ...any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, n.SuperURL())
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var s string
	err = c.QueryRow(ctx, q, args...).Scan(&s)
	return s, err
}

func pgValue(t *testing.T, n *cluster.PGNode, q string, args ...any) string {
	t.Helper()
	s, err := pgValueErr(t.Context(), n, q, args...)
	if err != nil {
		t.Fatalf("%s on %s: %v", q, n.Name, err)
	}
	return s
}

func pgExec(t *testing.T, n *cluster.PGNode, qs ...string) {
	t.Helper()
	c, err := pgx.Connect(t.Context(), n.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for _, q := range qs {
		if _, err := c.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s on %s: %v", q, n.Name, err)
		}
	}
}

// stopTree stops every process of n (SIGSTOP, the postmaster first so it starts no new child)
// and returns the function that resumes them; the test's cleanup resumes them too.
func stopTree(t *testing.T, n *cluster.PGNode) (resume func()) {
	t.Helper()
	pm := n.PID()
	if pm == 0 {
		t.Fatalf("%s is not running", n.Name)
	}
	pids := []int{pm}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		if p, err := strconv.Atoi(ent.Name()); err == nil {
			if f := procFields(p); len(f) > 1 && f[1] == strconv.Itoa(pm) {
				pids = append(pids, p)
			}
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %s pid %d: %v", n.Name, pid, err)
		}
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(resume)
	cluster.Eventually(t, 5*time.Second, n.Name+" stopped", func() (bool, error) {
		for _, pid := range pids {
			if f := procFields(pid); len(f) == 0 || f[0] != "T" {
				return false, nil
			}
		}
		return true, nil
	})
	return resume
}

// procFields returns the fields of /proc/<pid>/stat after the command name: state, ppid, ….
func procFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}
