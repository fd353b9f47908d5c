package failovertest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	_ "github.com/go-sql-driver/mysql"
)

// myWriter inserts through baton on one session (one connection of a database/sql pool).
type myWriter struct {
	db   *sql.DB
	id   int
	conn *sql.Conn
}

func (w *myWriter) write(ctx context.Context, seq int) error {
	_, err := w.conn.ExecContext(ctx, "INSERT INTO acked (w, seq) VALUES (?, ?)", w.id, seq)
	return err
}

func (w *myWriter) reconnect(ctx context.Context) error {
	w.close()
	c, err := w.db.Conn(ctx)
	if err != nil {
		return err
	}
	w.conn = c
	return nil
}

func (w *myWriter) close() {
	if w.conn != nil {
		w.conn.Raw(func(any) error { return errors.New("discard") }) // never reuse a failed session
		w.conn.Close()
		w.conn = nil
	}
}

func myQueryInt(ctx context.Context, db *sql.DB, q string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, q).Scan(&n)
	return n, err
}

func myAssertAllAcked(t *testing.T, ctx context.Context, l *load, db *sql.DB) {
	t.Helper()
	have := map[[2]int]bool{}
	rows, err := db.QueryContext(ctx, "SELECT w, seq FROM acked")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k [2]int
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			t.Fatal(err)
		}
		have[k] = true
	}
	rows.Close()
	missing := 0
	for w, seqs := range l.snapshotAcked() {
		for _, s := range seqs {
			if !have[[2]int{w, s}] {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on the new primary", missing, l.ackedCount())
	}
}

func startMyLoad(t *testing.T, ctx context.Context, b *batontest.Baton, c *cluster.MyCluster) *load {
	t.Helper()
	db := cluster.OpenMySQL(t, b.DSN(c, "timeout=5s"))
	if _, err := db.ExecContext(ctx, "CREATE TABLE acked (w int, seq int, PRIMARY KEY (w, seq))"); err != nil {
		t.Fatal(err)
	}
	return startLoad(t, 4, func(id int) writer { return &myWriter{db: db, id: id} })
}

// TestMyKillPrimary: kill -9 the primary of a semi-synchronous MariaDB cluster under write
// load: baton promotes the most up-to-date replica, re-points the other, writes resume, no
// acknowledged write is lost, and the restarted old primary is fenced (read_only) and gets no
// writes.
func TestMyKillPrimary(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{SemiSync: true})
	b := batontest.StartMyBatonForTest(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool {
		return st.Epoch >= 1 && st.Phase == topology.PhaseStable && st.Primary == "my1"
	})
	l := startMyLoad(t, ctx, b, c)
	defer l.stop()
	l.ackedAfter(t, time.Now(), 10*time.Second)

	killed := time.Now()
	if err := c.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	resumed := l.ackedAfter(t, killed, 30*time.Second)
	t.Logf("kill -9 of the primary → first acknowledged write through baton: %v", resumed.Sub(killed).Round(time.Millisecond))
	st = waitState(t, b, 10*time.Second, "failover published", func(s topology.ClusterState) bool {
		return s.Epoch > st.Epoch && s.Phase == topology.PhaseStable && s.Primary != "my1" && s.Primary != ""
	})
	newIdx := map[string]int{"my2": 0, "my3": 1}[st.Primary]
	newP, other := c.Replicas[newIdx], c.Replicas[1-newIdx]
	newDB, otherDB := cluster.OpenMySQL(t, newP.RootDSN()), cluster.OpenMySQL(t, other.RootDSN())
	if ro, err := myQueryInt(ctx, newDB, "SELECT @@read_only"); err != nil || ro != 0 {
		t.Fatalf("new primary %s: read_only %d, %v", st.Primary, ro, err)
	}
	cluster.Eventually(t, 20*time.Second, "the other replica replicates from the new primary", func() (bool, error) {
		var port int
		rows, err := otherDB.QueryContext(ctx, "SHOW SLAVE STATUS")
		if err != nil {
			return false, err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		if !rows.Next() {
			return false, errors.New("no replication configured")
		}
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return false, err
		}
		io := ""
		for i, c := range cols {
			switch c {
			case "Master_Port":
				for _, ch := range vals[i] {
					port = port*10 + int(ch-'0')
				}
			case "Slave_IO_Running":
				io = string(vals[i])
			}
		}
		return port == newP.Port && io == "Yes", nil
	})
	l.ackedAfter(t, time.Now(), 10*time.Second)
	errs := l.errorsSince(killed)
	for _, e := range errs {
		t.Logf("error after kill (+%v): %v", e.at.Sub(killed).Round(time.Millisecond), e.err)
	}
	if len(errs) > 4 {
		t.Errorf("%d client errors after the kill; at most one in-flight statement per writer (4) may fail", len(errs))
	}

	// The old primary comes back writable (read_only is off in its configuration): baton fences
	// it and sends it nothing.
	if err := c.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	oldDB := cluster.OpenMySQL(t, c.Primary.RootDSN())
	cluster.Eventually(t, 20*time.Second, "the restarted old primary is fenced", func() (bool, error) {
		ro, err := myQueryInt(ctx, oldDB, "SELECT @@read_only")
		return err == nil && ro == 1, err
	})
	// The fence kills client connections, the test's own pooled ones too: count with retries.
	count := func() int64 {
		var n int64
		cluster.Eventually(t, 10*time.Second, "count rows on the old primary", func() (bool, error) {
			var err error
			n, err = myQueryInt(ctx, oldDB, "SELECT count(*) FROM acked")
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
	myAssertAllAcked(t, ctx, l, newDB)
	t.Logf("%d acknowledged writes, none lost; %d client errors", l.ackedCount(), len(errs))
}

// TestMySwitchover: a planned switchover under write load costs no client error and loses
// nothing; the old primary becomes a replica of the new one online.
func TestMySwitchover(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	b := batontest.StartMyBatonForTest(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool { return st.Epoch >= 1 && st.Primary == "my1" })
	l := startMyLoad(t, ctx, b, c)
	defer l.stop()
	l.ackedAfter(t, time.Now(), 10*time.Second)

	res, started := switchover(t, b, "")
	if res.Primary == "my1" || res.Primary == "" {
		t.Fatalf("switchover: primary %q", res.Primary)
	}
	waitState(t, b, 5*time.Second, "instance follows the switchover", func(st topology.ClusterState) bool {
		return st.Primary == res.Primary && st.Phase == topology.PhaseStable
	})
	l.ackedAfter(t, time.Now(), 10*time.Second)
	done := time.Now()
	l.stop()
	if errs := l.errorsSince(started); len(errs) > 0 {
		t.Errorf("%d client errors during the switchover; first: %v", len(errs), errs[0].err)
	}
	t.Logf("switchover my1 → %s: write pause %v", res.Primary, l.longestGap(started, done).Round(time.Millisecond))

	newP := c.Replicas[map[string]int{"my2": 0, "my3": 1}[res.Primary]]
	newDB := cluster.OpenMySQL(t, newP.RootDSN())
	myAssertAllAcked(t, ctx, l, newDB)
	// The old primary is a read-only replica of the new one and has every row.
	oldDB := cluster.OpenMySQL(t, c.Primary.RootDSN())
	want, err := myQueryInt(ctx, newDB, "SELECT count(*) FROM acked")
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 20*time.Second, "the old primary replicates from the new one", func() (bool, error) {
		ro, err := myQueryInt(ctx, oldDB, "SELECT @@read_only")
		if err != nil || ro != 1 {
			return false, err
		}
		n, err := myQueryInt(ctx, oldDB, "SELECT count(*) FROM acked")
		return n == want, err
	})
}
