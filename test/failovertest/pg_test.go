package failovertest

import (
	"context"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// pgWriter inserts through baton on one session.
type pgWriter struct {
	url  string
	id   int
	conn *pgx.Conn
}

func (w *pgWriter) write(ctx context.Context, seq int) error {
	_, err := w.conn.Exec(ctx, "INSERT INTO acked (w, seq) VALUES ($1, $2)", w.id, seq)
	return err
}

func (w *pgWriter) reconnect(ctx context.Context) error {
	w.close()
	c, err := pgx.Connect(ctx, w.url)
	if err != nil {
		return err
	}
	w.conn = c
	return nil
}

func (w *pgWriter) close() {
	if w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
}

func pgQueryInt(ctx context.Context, url, q string) (int64, error) {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var n int64
	err = c.QueryRow(ctx, q).Scan(&n)
	return n, err
}

// startPGLoad creates the acked table through baton at url and starts four writers.
func startPGLoad(t *testing.T, ctx context.Context, url string) *load {
	t.Helper()
	setup, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close(ctx)
	if _, err := setup.Exec(ctx, "CREATE TABLE acked (w int, seq int, PRIMARY KEY (w, seq))"); err != nil {
		t.Fatal(err)
	}
	return startLoad(t, 4, func(id int) writer { return &pgWriter{url: url, id: id} })
}

// assertAllAcked checks that every acknowledged write of l is in the acked table at url.
func assertAllAcked(t *testing.T, ctx context.Context, l *load, url string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	missing := 0
	for w, seqs := range l.snapshotAcked() {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM acked WHERE w = $1 AND seq = ANY($2)", w, seqs).Scan(&n); err != nil {
			t.Fatal(err)
		}
		missing += len(seqs) - n
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on the new primary", missing, l.ackedCount())
	}
}

// waitState polls the instance's shared state until ok(st).
func waitState(t *testing.T, b *batontest.Baton, d time.Duration, what string, ok func(topology.ClusterState) bool) topology.ClusterState {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, have := b.Inst.Clusters()[0].State()
		if have && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v (state %+v)", what, d, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPGKillPrimary: kill -9 the primary of a synchronous (ANY 1) cluster under write load.
// baton promotes the most up-to-date replica, re-points the other, writes resume through baton,
// no acknowledged write is lost, and the restarted old primary is fenced and gets no writes.
func TestPGKillPrimary(t *testing.T) {
	cluster.RequirePG(t)
	c := cluster.StartPGForTest(t, cluster.PGOptions{Fast: true, SyncStandbys: "ANY 1 (replica1, replica2)",
		Settings: []string{"synchronous_commit = on"}})
	b := batontest.StartPGBatonForTest(t, c, nil)
	url := b.URL(c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	st := waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool {
		return st.Epoch >= 1 && st.Phase == topology.PhaseStable && st.Primary == "pg1"
	})
	l := startPGLoad(t, ctx, url)
	defer l.stop()
	l.ackedAfter(t, time.Now(), 10*time.Second)
	before := l.ackedCount()

	killed := time.Now()
	if err := c.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	resumed := l.ackedAfter(t, killed, 30*time.Second)
	t.Logf("kill -9 of the primary → first acknowledged write through baton: %v (%d writes before)", resumed.Sub(killed).Round(time.Millisecond), before)

	st = waitState(t, b, 10*time.Second, "failover published", func(s topology.ClusterState) bool {
		return s.Epoch > st.Epoch && s.Phase == topology.PhaseStable && s.Primary != "pg1" && s.Primary != ""
	})
	newIdx := map[string]int{"pg2": 0, "pg3": 1}[st.Primary]
	newP, other := c.Replicas[newIdx], c.Replicas[1-newIdx]
	if rec, err := pgQueryInt(ctx, newP.SuperURL(), "SELECT pg_is_in_recovery()::int"); err != nil || rec != 0 {
		t.Fatalf("new primary %s: in recovery %d, %v", st.Primary, rec, err)
	}
	// The other replica follows the new primary.
	cluster.Eventually(t, 20*time.Second, "the other replica streams from the new primary", func() (bool, error) {
		port, err := pgQueryInt(ctx, other.SuperURL(), "SELECT coalesce(sender_port, 0) FROM pg_stat_wal_receiver WHERE status = 'streaming' UNION ALL SELECT 0 LIMIT 1")
		return err == nil && int(port) == newP.Port, err
	})

	// Writes keep flowing for a while on the new primary.
	l.ackedAfter(t, time.Now(), 10*time.Second)
	errs := l.errorsSince(killed)
	if len(errs) > 4 {
		t.Errorf("%d client errors after the kill; at most one in-flight statement per writer (4) may fail: last %v", len(errs), lastErr(errs))
	}
	for _, e := range errs {
		t.Logf("error after kill (+%v): %v", e.at.Sub(killed).Round(time.Millisecond), e.err)
	}

	// The old primary comes back: it must be fenced and receive nothing through baton.
	if err := c.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 20*time.Second, "the restarted old primary is fenced", func() (bool, error) {
		ro, err := pgQueryInt(ctx, c.Primary.SuperURL(), "SELECT (current_setting('default_transaction_read_only') = 'on')::int")
		return err == nil && ro == 1, err
	})
	// The fence terminates client backends after its reload, the test's own connection too:
	// count with retries.
	count := func() int64 {
		var n int64
		cluster.Eventually(t, 10*time.Second, "rows on the old primary", func() (bool, error) {
			var err error
			n, err = pgQueryInt(ctx, c.Primary.SuperURL(), "SELECT count(*) FROM acked")
			return err == nil, err
		})
		return n
	}
	oldRows := count()
	l.ackedAfter(t, time.Now(), 10*time.Second)
	l.stop()
	if n := count(); n != oldRows {
		t.Errorf("old primary: %d rows after the load went on, %d before: it received writes", n, oldRows)
	}

	// Every acknowledged write is on the new primary (synchronous replication).
	assertAllAcked(t, ctx, l, newP.SuperURL())
	t.Logf("%d acknowledged writes, none lost; %d client errors", l.ackedCount(), len(errs))
}
