package failover_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/failover"
	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgSetup describes a test cluster to the engine: the superuser as failover.user.
func pgSetup(t *testing.T, c *cluster.PGCluster) (failover.Engine, map[*cluster.PGNode]*topology.Node) {
	t.Helper()
	cl := &topology.Cluster{
		Name: "pg", Engine: topology.EnginePostgres, Database: c.Opts.AppDB,
		Users: []*topology.User{{Name: "postgres", BackendUser: "postgres",
			BackendPassword: topology.Secret(c.Opts.Password)}},
		Failover: topology.Failover{User: "postgres"},
		Pool:     topology.Pool{ConnectTimeout: topology.Duration(5 * time.Second)},
	}
	nodes := describeNodes(cl, c.Nodes(), func(n *cluster.PGNode) (string, string) { return n.Name, n.Addr() })
	e := failover.NewPG(cl)
	t.Cleanup(e.Close)
	return e, nodes
}

// describeNodes adds a test cluster's servers to cl as nodes (name and address from info) and
// maps each server to its node.
func describeNodes[N comparable](cl *topology.Cluster, servers []N, info func(N) (name, addr string)) map[N]*topology.Node {
	nodes := make(map[N]*topology.Node, len(servers))
	for _, n := range servers {
		name, addr := info(n)
		tn := &topology.Node{Name: name, Address: addr}
		cl.Nodes = append(cl.Nodes, tn)
		nodes[n] = tn
	}
	return nodes
}

func stepCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pgConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustInspect(t *testing.T, e failover.Engine, n *topology.Node) failover.NodeInfo {
	t.Helper()
	info, err := e.Inspect(stepCtx(t), n)
	if err != nil {
		t.Fatalf("Inspect %s: %v", n.Name, err)
	}
	t.Logf("%s: %+v", n.Name, info)
	return info
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestPGInspectFenceUnfence(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	e, nodes := pgSetup(t, c)
	p := nodes[c.Primary]

	app := pgConnect(t, c.Primary.AppURL())
	if _, err := app.Exec(t.Context(), "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(t.Context(), "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	pi := mustInspect(t, e, p)
	if pi.InRecovery || !pi.Writable || pi.Timeline != 1 || pi.Source != "" || pi.Received != pi.Applied {
		t.Errorf("primary: %+v; want writable, not in recovery, timeline 1, no source, Received = Applied", pi)
	}
	for _, r := range c.Replicas {
		n := nodes[r]
		if err := e.WaitApplied(stepCtx(t), n, pi.Applied); err != nil {
			t.Fatalf("WaitApplied %s: %v", r.Name, err)
		}
		ri := mustInspect(t, e, n)
		if !ri.InRecovery || ri.Writable || ri.Timeline != 1 || !health.SameEndpoint(ri.Source, p.Address) {
			t.Errorf("%s: %+v; want a read-only replica on timeline 1 following %s", r.Name, ri, p.Address)
		}
		if cmp, ok := e.Compare(ri.Applied, pi.Applied); !ok || cmp < 0 {
			t.Errorf("%s: applied %s is behind %s after WaitApplied", r.Name, ri.Applied, pi.Applied)
		}
		if cmp, ok := e.Compare(ri.Received, ri.Applied); !ok || cmp < 0 {
			t.Errorf("%s: received %s < applied %s", r.Name, ri.Received, ri.Applied)
		}
	}
	// A position the replicas cannot reach in time makes WaitApplied give up with ctx.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	err := e.WaitApplied(ctx, nodes[c.Replicas[0]], "FF/0")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitApplied of an unreachable position: %v, want DeadlineExceeded", err)
	}

	// The operator's own synchronous_standby_names, set with ALTER SYSTEM: Fence replaces it,
	// Unfence must bring it back.
	const own = "ANY 1 (replica1, replica2)"
	su := pgConnect(t, c.Primary.SuperURL())
	for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = '" + own + "'", "SELECT pg_reload_conf()"} {
		if _, err := su.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	ssn := func() string {
		t.Helper()
		s := pgConnect(t, c.Primary.SuperURL())
		defer s.Close(t.Context())
		var v string
		if err := s.QueryRow(t.Context(), "SHOW synchronous_standby_names").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	cluster.Eventually(t, 5*time.Second, "the operator's synchronous_standby_names in effect", func() (bool, error) { return ssn() == own, nil })

	// Fence: the open client connection is ended, new sessions are read-only.
	for i := range 2 { // idempotent
		if err := e.Fence(stepCtx(t), p); err != nil {
			t.Fatalf("Fence #%d: %v", i+1, err)
		}
	}
	if _, err := app.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Errorf("a client connection opened before Fence still works")
	}
	app2 := pgConnect(t, c.Primary.AppURL())
	_, err = app2.Exec(t.Context(), "INSERT INTO t VALUES (2)")
	if pgCode(err) != "25006" {
		t.Errorf("write on the fenced primary: %v, want SQLSTATE 25006 (read_only_sql_transaction)", err)
	}
	if pi := mustInspect(t, e, p); pi.Writable || pi.InRecovery {
		t.Errorf("fenced primary: %+v, want not writable and not in recovery", pi)
	}
	// The second layer: a session that turns read-only off is never told its commit succeeded.
	if v, want := ssn(), `"baton_fenced:`+own+`"`; v != want {
		t.Errorf("synchronous_standby_names on the fenced primary = %q, want %q", v, want)
	}
	rogue := pgConnect(t, c.Primary.AppURL())
	// synchronous_commit = on is PostgreSQL's default; the test clusters run with off for speed.
	for _, q := range []string{"SET default_transaction_read_only = off", "SET synchronous_commit = on"} {
		if _, err := rogue.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	_, err = rogue.Exec(wctx, "INSERT INTO t VALUES (99)")
	wcancel()
	if err == nil {
		t.Errorf("an explicit write on the fenced primary was acknowledged")
	}
	t.Logf("explicit write on the fenced primary: %v", err)

	// Unfence: writable again, for new and for existing sessions.
	if err := e.Unfence(stepCtx(t), p); err != nil {
		t.Fatalf("Unfence: %v", err)
	}
	cluster.Eventually(t, 5*time.Second, "existing session writes after Unfence", func() (bool, error) {
		_, err := app2.Exec(t.Context(), "INSERT INTO t VALUES (2) ON CONFLICT DO NOTHING")
		return err == nil, err
	})
	app3 := pgConnect(t, c.Primary.AppURL())
	if _, err := app3.Exec(t.Context(), "INSERT INTO t VALUES (3)"); err != nil {
		t.Errorf("write after Unfence: %v", err)
	}
	if pi := mustInspect(t, e, p); !pi.Writable {
		t.Errorf("unfenced primary: %+v, want writable", pi)
	}
	if v := ssn(); v != own {
		t.Errorf("synchronous_standby_names after Unfence = %q, want the operator's %q back", v, own)
	}
	if err := e.Rejoin(stepCtx(t), p, nodes[c.Replicas[0]]); !errors.Is(err, failover.ErrUnsupported) {
		t.Errorf("Rejoin: %v, want ErrUnsupported", err)
	}
}

// TestPGFailover is an unplanned failover by hand: the primary dies while replica2 is behind;
// the replica that received the most is promoted, replica2 follows it onto the new timeline, and
// the old primary comes back as a replica through pg_rewind.
func TestPGFailover(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{Settings: []string{"full_page_writes = on"}})
	e, nodes := pgSetup(t, c)
	oldPrimary, r1, r2 := c.Primary, c.Replicas[0], c.Replicas[1]
	p := nodes[oldPrimary]

	app := pgConnect(t, oldPrimary.AppURL())
	exec := func(conn *pgx.Conn, q string) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(app, "CREATE TABLE t (id int PRIMARY KEY, v text)")
	exec(app, "INSERT INTO t SELECT g, 'before' FROM generate_series(1, 100) g")
	pos := mustInspect(t, e, p).Applied
	for _, r := range c.Replicas {
		if err := e.WaitApplied(stepCtx(t), nodes[r], pos); err != nil {
			t.Fatal(err)
		}
	}
	// replica2 misses the last rows.
	if err := r2.Stop(); err != nil {
		t.Fatal(err)
	}
	exec(app, "INSERT INTO t SELECT g, 'late' FROM generate_series(101, 200) g")
	pos = mustInspect(t, e, p).Applied
	if err := e.WaitApplied(stepCtx(t), nodes[r1], pos); err != nil {
		t.Fatal(err)
	}
	if err := oldPrimary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Candidate: the highest received position.
	var best *cluster.PGNode
	var bestInfo failover.NodeInfo
	for _, r := range []*cluster.PGNode{r2, r1} {
		info := mustInspect(t, e, nodes[r])
		if !info.InRecovery {
			t.Fatalf("%s is not in recovery: %+v", r.Name, info)
		}
		if cmp, ok := e.Compare(info.Received, bestInfo.Received); best == nil || (ok && cmp > 0) {
			best, bestInfo = r, info
		}
	}
	if best != r1 {
		t.Fatalf("candidate %s, want replica1 (replica2 was stopped before the last rows)", best.Name)
	}
	lagging := mustInspect(t, e, nodes[r2])
	if d := e.Distance(bestInfo.Received, lagging.Received); d <= 0 {
		t.Errorf("Distance(%s, %s) = %d, want > 0", bestInfo.Received, lagging.Received, d)
	}

	cand, other := nodes[r1], nodes[r2]
	began := time.Now()
	if err := e.WaitApplied(stepCtx(t), cand, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.Promote(stepCtx(t), cand); err != nil {
		t.Fatal(err)
	}
	promoted := time.Since(began)
	if err := e.Repoint(stepCtx(t), other, cand); err != nil {
		t.Fatal(err)
	}
	t.Logf("wait+promote %v, repoint %v", promoted, time.Since(began)-promoted)

	ci := mustInspect(t, e, cand)
	if ci.InRecovery || !ci.Writable || ci.Timeline != 2 {
		t.Errorf("new primary: %+v; want writable on timeline 2", ci)
	}
	if oi := mustInspect(t, e, other); !health.SameEndpoint(oi.Source, cand.Address) {
		t.Errorf("re-pointed replica: %+v; want following %s", oi, cand.Address)
	}
	// It streams the rest of timeline 1 from the new primary, then switches to timeline 2.
	cluster.Eventually(t, 10*time.Second, "re-pointed replica on timeline 2", func() (bool, error) {
		oi, err := e.Inspect(stepCtx(t), other)
		return err == nil && oi.Timeline == 2, fmt.Errorf("%+v, %v", oi, err)
	})
	if err := e.Promote(stepCtx(t), cand); err != nil { // already primary: a no-op
		t.Errorf("second Promote: %v", err)
	}

	// Writes go to the new primary and reach the re-pointed replica, with every row the old
	// primary had (replica2 got the late rows from replica1).
	newApp := pgConnect(t, r1.AppURL())
	exec(newApp, "INSERT INTO t VALUES (201, 'after')")
	rc := pgConnect(t, r2.AppURL())
	cluster.Eventually(t, 15*time.Second, "replica2 sees the row written after the failover", func() (bool, error) {
		var n int
		err := rc.QueryRow(t.Context(), "SELECT count(*) FROM t").Scan(&n)
		return err == nil && n == 201, fmt.Errorf("count %d, err %v", n, err)
	})

	// The old primary comes back as a replica of the new one through pg_rewind.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	began = time.Now()
	if err := c.Rejoin(ctx, oldPrimary, r1); err != nil {
		t.Fatalf("harness Rejoin: %v", err)
	}
	t.Logf("pg_rewind rejoin took %v", time.Since(began))
	if c.Primary != r1 || len(c.Replicas) != 2 {
		t.Errorf("after Rejoin the cluster's primary is %s with %d replicas", c.Primary.Name, len(c.Replicas))
	}
	if oi := mustInspect(t, e, p); !oi.InRecovery || oi.Writable || !health.SameEndpoint(oi.Source, cand.Address) {
		t.Errorf("rejoined old primary: %+v; want a replica of %s", oi, cand.Address)
	}
	exec(newApp, "INSERT INTO t VALUES (202, 'after rejoin')")
	oc := pgConnect(t, oldPrimary.AppURL())
	cluster.Eventually(t, 15*time.Second, "the old primary sees the new rows", func() (bool, error) {
		var n int
		err := oc.QueryRow(t.Context(), "SELECT count(*) FROM t WHERE id > 200").Scan(&n)
		return err == nil && n == 2, fmt.Errorf("count %d, err %v", n, err)
	})
}
