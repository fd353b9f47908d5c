package mytest

import (
	"database/sql"
	"testing"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
)

// TestReadYourWritesMySQL: in read_your_writes mode a session that has written reads from the
// primary (it always sees its own writes); a session that has not written reads from a replica.
func TestReadYourWritesMySQL(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) { cl.Consistency = topology.ReadYourWrites })
	ctx := ctxT(t)
	tbl := unique("ryw")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	waitReplicated(t)
	db := openDSN(t, b.DSN(my, ""))
	w, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantReplica(t, "a read before any write", where(t, w, ctx, ""))
	for i := 1; i <= 5; i++ {
		mustExec(t, w, "INSERT INTO "+tbl+" VALUES (?)", i)
		var n, port int
		if err := w.QueryRowContext(ctx, "SELECT COUNT(*), @@port FROM "+tbl).Scan(&n, &port); err != nil {
			t.Fatal(err)
		}
		if n != i {
			t.Fatalf("after writing row %d the session read %d rows", i, n)
		}
		wantPrimary(t, "a read after the session's write", port)
		wantReplica(t, "a read of a session that never wrote", where(t, r, ctx, ""))
	}
}

// openDSN returns a database/sql handle for dsn, closed when the test ends.
func openDSN(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
