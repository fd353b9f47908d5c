package mytest

import (
	"testing"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// TestReadYourWritesMySQL: in read_your_writes mode a session that has written reads its own
// writes every time, and with caught-up replicas those reads are served by a replica (baton
// learned the write's GTID and waited for it there), not by staying on the primary; a session
// that has not written reads from a replica.
func TestReadYourWritesMySQL(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) { cl.Consistency = topology.ReadYourWrites })
	ctx := ctxT(t)
	tbl := unique("ryw")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	waitReplicated(t)
	db := cluster.OpenMySQL(t, b.DSN(my, ""))
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
	const rounds = 40
	onReplica := 0
	for i := 1; i <= rounds; i++ {
		mustExec(t, w, "INSERT INTO "+tbl+" VALUES (?)", i)
		var n, port int
		if err := w.QueryRowContext(ctx, "SELECT COUNT(*), @@port FROM "+tbl).Scan(&n, &port); err != nil {
			t.Fatal(err)
		}
		if n != i {
			t.Fatalf("after writing row %d the session read %d rows (port %d)", i, n, port)
		}
		if port != my.Primary.Port {
			wantReplica(t, "a read after the session's write", port)
			onReplica++
		}
		wantReplica(t, "a read of a session that never wrote", where(t, r, ctx, ""))
	}
	m := b.Inst.Clusters()[0].My.Metrics()
	t.Logf("%d of %d reads after a write served by a replica; GTID waits %d, fallbacks %d", onReplica, rounds, m.GTIDWaits(), m.GTIDFallbacks())
	if onReplica < rounds*3/4 {
		t.Fatalf("only %d of %d reads after a write ran on a replica; want most (read_your_writes by GTID, not by staying on the primary)", onReplica, rounds)
	}
}
