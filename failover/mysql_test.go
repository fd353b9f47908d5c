package failover_test

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/failover"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// mySetup describes a MariaDB test cluster to the engine: root as failover.user, the harness's
// replication account as failover.replication_user unless noRepl.
func mySetup(t *testing.T, c *cluster.MyCluster, noRepl bool) (failover.Engine, map[*cluster.MyNode]*topology.Node) {
	t.Helper()
	cl := &topology.Cluster{
		Name: "my", Engine: topology.EngineMySQL, Database: c.Opts.AppDB,
		Users: []*topology.User{{Name: "root", BackendUser: "root",
			BackendPassword: topology.Secret(c.Opts.RootPassword)}},
		Failover: topology.Failover{User: "root", ReplicationUser: cluster.MyReplUser,
			ReplicationPassword: topology.Secret(cluster.MyReplPassword)},
		Pool: topology.Pool{ConnectTimeout: topology.Duration(5 * time.Second)},
	}
	if noRepl {
		cl.Failover.ReplicationUser, cl.Failover.ReplicationPassword = "", ""
	}
	nodes := describeNodes(cl, c.Nodes(), func(n *cluster.MyNode) (string, string) { return n.Name, n.Addr() })
	e := failover.NewMy(cl)
	t.Cleanup(e.Close)
	return e, nodes
}

func myExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func myCount(db *sql.DB, q string) (int, error) {
	var n int
	err := db.QueryRow(q).Scan(&n)
	return n, err
}

func myErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func TestMyInspectFenceUnfence(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	e, nodes := mySetup(t, c, false)
	p := nodes[c.Primary]

	app := cluster.OpenMySQL(t, c.Primary.AppDSN())
	myExec(t, app, "CREATE TABLE t (id int PRIMARY KEY)")
	myExec(t, app, "INSERT INTO t VALUES (1)")

	pi := mustInspect(t, e, p)
	if pi.InRecovery || !pi.Writable || pi.Source != "" || pi.Applied == "" || pi.Received != pi.Applied {
		t.Errorf("primary: %+v; want writable, no source, Received = Applied", pi)
	}
	for _, r := range c.Replicas {
		n := nodes[r]
		if err := e.WaitApplied(stepCtx(t), n, pi.Applied); err != nil {
			t.Fatalf("WaitApplied %s: %v", r.Name, err)
		}
		ri := mustInspect(t, e, n)
		if !ri.InRecovery || ri.Writable || ri.Source != c.Primary.Addr() {
			t.Errorf("%s: %+v; want a read-only replica of %s", r.Name, ri, c.Primary.Addr())
		}
		if cmp, ok := e.Compare(ri.Applied, pi.Applied); !ok || cmp != 0 {
			t.Errorf("%s: applied %q, primary %q: Compare = %d, %v; want 0, true", r.Name, ri.Applied, pi.Applied, cmp, ok)
		}
	}

	// Fence: the open client connection is killed, writes fail with ER_OPTION_PREVENTS_STATEMENT.
	pinned, err := app.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if _, err := pinned.ExecContext(t.Context(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := e.Fence(stepCtx(t), p); err != nil {
			t.Fatalf("Fence #%d: %v", i+1, err)
		}
	}
	if _, err := pinned.ExecContext(t.Context(), "SELECT 1"); err == nil {
		t.Errorf("a client connection opened before Fence still works")
	}
	if _, err := app.ExecContext(t.Context(), "INSERT INTO t VALUES (2)"); myErrno(err) != 1290 {
		t.Errorf("write on the fenced primary: %v, want error 1290 (--read-only)", err)
	}
	if fi := mustInspect(t, e, p); fi.Writable || !fi.InRecovery {
		t.Errorf("fenced primary: %+v; want read-only", fi)
	}
	// The replicas still replicate from it (the dump threads were spared).
	for _, r := range c.Replicas {
		if ri := mustInspect(t, e, nodes[r]); ri.Source != c.Primary.Addr() {
			t.Errorf("%s after Fence: %+v", r.Name, ri)
		}
	}

	if err := e.Unfence(stepCtx(t), p); err != nil {
		t.Fatal(err)
	}
	myExec(t, app, "INSERT INTO t VALUES (2)")
	if ui := mustInspect(t, e, p); !ui.Writable || ui.InRecovery {
		t.Errorf("unfenced primary: %+v; want writable", ui)
	}
	if err := c.WaitCaughtUp(stepCtx(t)); err != nil {
		t.Errorf("replicas after Fence/Unfence: %v", err)
	}
}

// TestMyFailover: the primary dies while replica2's replication is stopped; replica1, which
// received the most, is promoted, replica2 follows it and gets the rows it missed; the old
// primary, restarted and written to, cannot rejoin.
func TestMyFailover(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	e, nodes := mySetup(t, c, false)
	oldPrimary, r1, r2 := c.Primary, c.Replicas[0], c.Replicas[1]

	app := cluster.OpenMySQL(t, oldPrimary.AppDSN())
	myExec(t, app, "CREATE TABLE t (id int PRIMARY KEY, v varchar(20))")
	for i := 1; i <= 20; i++ {
		myExec(t, app, "INSERT INTO t VALUES (?, 'before')", i)
	}
	if err := c.WaitCaughtUp(stepCtx(t)); err != nil {
		t.Fatal(err)
	}
	myExec(t, cluster.OpenMySQL(t, r2.RootDSN()), "STOP SLAVE")
	for i := 21; i <= 30; i++ {
		myExec(t, app, "INSERT INTO t VALUES (?, 'late')", i)
	}
	pos := mustInspect(t, e, nodes[oldPrimary]).Applied
	if err := e.WaitApplied(stepCtx(t), nodes[r1], pos); err != nil {
		t.Fatal(err)
	}
	if err := oldPrimary.Kill(); err != nil {
		t.Fatal(err)
	}

	var best *cluster.MyNode
	var bestInfo failover.NodeInfo
	infos := map[*cluster.MyNode]failover.NodeInfo{}
	for _, r := range []*cluster.MyNode{r2, r1} {
		info := mustInspect(t, e, nodes[r])
		infos[r] = info
		if cmp, ok := e.Compare(info.Received, bestInfo.Received); best == nil || (ok && cmp > 0) {
			best, bestInfo = r, info
		}
	}
	if best != r1 {
		t.Fatalf("candidate %s, want replica1", best.Name)
	}
	if d := e.Distance(infos[r1].Received, infos[r2].Received); d != 10 {
		t.Errorf("Distance(%q, %q) = %d, want 10 transactions", infos[r1].Received, infos[r2].Received, d)
	}

	cand, other := nodes[r1], nodes[r2]
	began := time.Now()
	if err := e.WaitApplied(stepCtx(t), cand, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.Promote(stepCtx(t), cand); err != nil {
		t.Fatal(err)
	}
	if err := e.Repoint(stepCtx(t), other, cand); err != nil {
		t.Fatal(err)
	}
	t.Logf("wait+promote+repoint %v", time.Since(began))
	if ci := mustInspect(t, e, cand); ci.InRecovery || !ci.Writable || ci.Source != "" {
		t.Errorf("new primary: %+v", ci)
	}
	if oi := mustInspect(t, e, other); oi.Source != r1.Addr() || oi.Writable {
		t.Errorf("re-pointed replica: %+v, want a read-only replica of %s", oi, r1.Addr())
	}

	newApp := cluster.OpenMySQL(t, r1.AppDSN())
	myExec(t, newApp, "INSERT INTO t VALUES (31, 'after')")
	rc := cluster.OpenMySQL(t, r2.AppDSN())
	cluster.Eventually(t, 15*time.Second, "replica2 has every row", func() (bool, error) {
		n, err := myCount(rc, "SELECT count(*) FROM t")
		return err == nil && n == 31, fmt.Errorf("count %d, err %v", n, err)
	})

	// The old primary comes back writable (its own configuration) and takes a write the new
	// primary never sees: it must be rebuilt, and Rejoin says so.
	if err := oldPrimary.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	myExec(t, cluster.OpenMySQL(t, oldPrimary.AppDSN()), "INSERT INTO t VALUES (1000, 'lost')")
	err := e.Rejoin(stepCtx(t), nodes[oldPrimary], cand)
	if !errors.Is(err, failover.ErrMustRebuild) {
		t.Errorf("Rejoin of a diverged old primary: %v, want ErrMustRebuild", err)
	}
	t.Logf("diverged rejoin: %v", err)
}

// TestMySwitchoverRejoin is a planned switchover with semi-synchronous replication: fence the
// primary, let the candidate apply everything, promote it, re-point the other replica and
// rejoin the old primary, which then receives new rows.
func TestMySwitchoverRejoin(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{SemiSync: true})
	e, nodes := mySetup(t, c, false)
	old, r1, r2 := c.Primary, c.Replicas[0], c.Replicas[1]

	root := cluster.OpenMySQL(t, old.RootDSN())
	cluster.Eventually(t, 10*time.Second, "semi-sync replicas connected", func() (bool, error) {
		var name string
		var n int
		err := root.QueryRow("SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'").Scan(&name, &n)
		return err == nil && n == 2, fmt.Errorf("%d clients, err %v", n, err)
	})

	app := cluster.OpenMySQL(t, old.AppDSN())
	myExec(t, app, "CREATE TABLE t (id int PRIMARY KEY)")
	for i := 1; i <= 10; i++ {
		myExec(t, app, "INSERT INTO t VALUES (?)", i)
	}
	var name string
	var acked int
	if err := root.QueryRow("SHOW STATUS LIKE 'Rpl_semi_sync_master_yes_tx'").Scan(&name, &acked); err != nil || acked < 11 {
		t.Errorf("semi-synchronously acknowledged commits: %d (%v), want >= 11", acked, err)
	}

	// Without replication credentials an old primary cannot rejoin.
	eNoRepl, _ := mySetup(t, c, true)
	if err := eNoRepl.Rejoin(stepCtx(t), nodes[old], nodes[r1]); err == nil {
		t.Errorf("Rejoin without failover.replication_user succeeded")
	}

	began := time.Now()
	if err := e.Fence(stepCtx(t), nodes[old]); err != nil {
		t.Fatal(err)
	}
	var binlogPos string
	if err := root.QueryRow("SELECT @@gtid_binlog_pos").Scan(&binlogPos); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitApplied(stepCtx(t), nodes[r1], binlogPos); err != nil {
		t.Fatal(err)
	}
	if err := e.Promote(stepCtx(t), nodes[r1]); err != nil {
		t.Fatal(err)
	}
	if err := e.Repoint(stepCtx(t), nodes[r2], nodes[r1]); err != nil {
		t.Fatal(err)
	}
	if err := e.Rejoin(stepCtx(t), nodes[old], nodes[r1]); err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover (fence, wait, promote, repoint, rejoin) took %v", time.Since(began))

	oi := mustInspect(t, e, nodes[old])
	if !oi.InRecovery || oi.Writable || oi.Source != r1.Addr() {
		t.Errorf("rejoined old primary: %+v, want a read-only replica of %s", oi, r1.Addr())
	}
	// Attached replicas reconnect within a second when their primary restarts (the server's
	// default MASTER_CONNECT_RETRY, 60 s, left them a minute behind).
	for _, n := range []*cluster.MyNode{old, r2} {
		if got := slaveStatusColumn(t, cluster.OpenMySQL(t, n.RootDSN()), "Connect_Retry"); got != "1" {
			t.Errorf("%s: Connect_Retry %q, want 1", n.Name, got)
		}
	}
	if _, err := app.ExecContext(t.Context(), "INSERT INTO t VALUES (100)"); myErrno(err) != 1290 {
		t.Errorf("write on the old primary after rejoin: %v, want error 1290", err)
	}
	newApp := cluster.OpenMySQL(t, r1.AppDSN())
	myExec(t, newApp, "INSERT INTO t VALUES (11)")
	for _, n := range []*cluster.MyNode{old, r2} {
		db := cluster.OpenMySQL(t, n.AppDSN())
		cluster.Eventually(t, 15*time.Second, n.Name+" receives the new row", func() (bool, error) {
			k, err := myCount(db, "SELECT count(*) FROM t")
			return err == nil && k == 11, fmt.Errorf("count %d, err %v", k, err)
		})
	}
	// Both replicas of the new primary are semi-synchronous (slave side enabled everywhere).
	r1root := cluster.OpenMySQL(t, r1.RootDSN())
	cluster.Eventually(t, 10*time.Second, "semi-sync replicas of the new primary", func() (bool, error) {
		var name string
		var n int
		err := r1root.QueryRow("SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'").Scan(&name, &n)
		return err == nil && n == 2, fmt.Errorf("%d clients, err %v", n, err)
	})
}

func TestGTIDCompareDistance(t *testing.T) {
	e := failover.NewMy(&topology.Cluster{})
	defer e.Close()
	tests := []struct {
		name, a, b string
		cmp        int
		ok         bool
		dist       int64
	}{
		{"equal", "0-1-5", "0-1-5", 0, true, 0},
		{"ahead", "0-1-7", "0-1-5", 1, true, 2},
		{"behind", "0-1-5", "0-2-7", -1, true, 0},
		{"empty", "", "0-1-3", -1, true, 0},
		{"both empty", "", "", 0, true, 0},
		{"extra domain", "0-1-5,1-2-3", "0-1-5", 1, true, 3},
		{"incomparable", "0-1-9,1-1-1", "0-1-5,1-1-4", 0, false, 4},
		{"bad", "0-x-1", "0-1-1", 0, false, -1},
		{"mysql subset", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10", "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", 1, true, 5},
		{"mysql holes", "aaaaaaaa-0000-0000-0000-000000000000:1-3:5-6", "aaaaaaaa-0000-0000-0000-000000000000:1-6", -1, true, 0},
		{"mysql disjoint", "aaaaaaaa-0000-0000-0000-000000000000:1-3", "bbbbbbbb-0000-0000-0000-000000000000:1-2", 0, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmp, ok := e.Compare(tt.a, tt.b)
			if ok != tt.ok || (ok && cmp != tt.cmp) {
				t.Errorf("Compare(%q, %q) = %d, %v; want %d, %v", tt.a, tt.b, cmp, ok, tt.cmp, tt.ok)
			}
			if d := e.Distance(tt.a, tt.b); d != tt.dist {
				t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.dist)
			}
		})
	}
	pg := failover.NewPG(&topology.Cluster{})
	defer pg.Close()
	if c, ok := pg.Compare("0/3000060", "1/0"); !ok || c != -1 {
		t.Errorf("pg Compare = %d, %v", c, ok)
	}
	if d := pg.Distance("0/3000060", "0/3000000"); d != 0x60 {
		t.Errorf("pg Distance = %d, want 96", d)
	}
	if d := pg.Distance("0/1", "x"); d != -1 {
		t.Errorf("pg Distance of a bad LSN = %d, want -1", d)
	}
}

// slaveStatusColumn returns one column of SHOW SLAVE STATUS ("" when there is no row).
func slaveStatusColumn(t *testing.T, db *sql.DB, col string) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil || !rows.Next() {
		return ""
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if c == col {
			return vals[i].String
		}
	}
	return ""
}
