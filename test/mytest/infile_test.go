package mytest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// infileRows writes n rows "i,name-i" to a temporary file.
func infileRows(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,name-%d\n", i, i)
	}
	f := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// primaryCount counts a table's rows directly on the primary.
func primaryCount(t *testing.T, tbl string) (n, sum int) {
	t.Helper()
	if err := primaryRoot(t).QueryRowContext(ctxT(t), "SELECT COUNT(*), COALESCE(SUM(id), 0) FROM "+tbl).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return n, sum
}

func TestLoadDataLocalInfile(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(c *topology.Cluster) { c.LocalInfile = true })
	const rows = 100000 // about 1.5 MB: many packets of file data
	file := infileRows(t, rows)
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			tbl := unique("infile")
			c := conn2(t, b, "allowAllFiles=true&"+m.params)
			mustExec(t, c, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, name VARCHAR(30))")
			replicaReadSoon(t, c, "a read before LOAD DATA")
			res, err := c.ExecContext(ctx, "LOAD DATA LOCAL INFILE '"+file+"' INTO TABLE "+tbl+" FIELDS TERMINATED BY ','")
			if err != nil {
				t.Fatalf("LOAD DATA LOCAL INFILE: %v", err)
			}
			if n, _ := res.RowsAffected(); n != rows {
				t.Fatalf("LOAD DATA affected %d rows; want %d", n, rows)
			}
			if n, sum := primaryCount(t, tbl); n != rows || sum != rows*(rows+1)/2 {
				t.Fatalf("the primary holds %d rows (sum %d); want %d", n, sum, rows)
			}
			// The session is in sync after the file exchange.
			replicaReadSoon(t, c, "a read after LOAD DATA")
			// A missing file: the driver sends an empty file; the server loads nothing.
			if _, err := c.ExecContext(ctx, "LOAD DATA LOCAL INFILE '"+file+".missing' INTO TABLE "+tbl); err == nil {
				t.Fatal("LOAD DATA of a missing file succeeded")
			}
			var n int
			if err := c.QueryRowContext(ctx, "/* baton:primary */ SELECT COUNT(*) FROM "+tbl).Scan(&n); err != nil || n != rows {
				t.Fatalf("after the failed LOAD DATA: %d rows, %v", n, err)
			}
		})
	}
}

func TestLoadDataLocalInfileDisabled(t *testing.T) {
	ctx := ctxT(t)
	file := infileRows(t, 10)
	tbl := unique("noinfile")
	c := conn(t, "allowAllFiles=true")
	mustExec(t, c, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, name VARCHAR(30))")
	_, err := c.ExecContext(ctx, "LOAD DATA LOCAL INFILE '"+file+"' INTO TABLE "+tbl+" FIELDS TERMINATED BY ','")
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("LOAD DATA LOCAL INFILE with local_infile off: %v; want an error from the server", err)
	}
	t.Logf("refused: %v", me)
	if n, _ := primaryCount(t, tbl); n != 0 {
		t.Fatalf("%d rows loaded although local_infile is off", n)
	}
	replicaReadSoon(t, c, "a read after the refused LOAD DATA")
	mustExec(t, c, "INSERT INTO "+tbl+" VALUES (1, 'after')")
	if n, _ := primaryCount(t, tbl); n != 1 {
		t.Fatalf("a write after the refused LOAD DATA: %d rows", n)
	}
}

// replicaReadSoon waits until the replicas have applied everything the primary has, then until
// a read of the session runs on a replica (at most 10 s): a read_your_writes session (the
// default) reads on a replica once one is known to have its writes, and after a wait on a replica
// timed out the session reads on the primary for a moment.
func replicaReadSoon(t *testing.T, c queryer, what string) {
	t.Helper()
	if err := my.WaitCaughtUp(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var last int
	cluster.Eventually(t, 10*time.Second, what+" runs on a replica", func() (bool, error) {
		last = where(t, c, ctxT(t), "")
		return last != my.Primary.Port, nil
	})
	wantReplica(t, what, last)
}
