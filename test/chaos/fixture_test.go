package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/test/etcdtest"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// dbNode is a database server of the cluster (cluster.PGNode, cluster.MyNode).
type dbNode interface {
	Kill() error
	Stop() error
	Start(ctx context.Context) error
	PID() int
}

// fixture is a running database cluster of one engine and what the tests do to its nodes
// directly, bypassing baton, as the administrator.
type fixture struct {
	engine string   // "pg" or "my": the cluster's name in baton, and its nodes' name prefix
	nodes  []dbNode // in configuration order: <engine>1 is the first primary
	spec   spec     // the cluster part of baton's configuration
	dial   dialer
	// rows counts the rows of the load's table on node i; readOnly reports whether node i
	// refuses writes (PostgreSQL default_transaction_read_only or recovery; MariaDB read_only);
	// inRecovery whether node i is a replica (PostgreSQL pg_is_in_recovery; MariaDB: runs a
	// replication channel).
	rows       func(ctx context.Context, i int) (int64, error)
	readOnly   func(ctx context.Context, i int) (bool, error)
	inRecovery func(ctx context.Context, i int) (bool, error)
	// missing counts the acknowledged writes that node i lacks.
	missing func(ctx context.Context, i int, acked map[int][]int) (int, error)
	// createTable creates the load's table on the primary.
	createTable func(ctx context.Context) error
	// lanes (nodes in namespaces) returns node i's address on a lane; ns its namespace.
	lanes []func(lane int) string
	ns    []*cluster.Netns
	// pg / my is the cluster itself (one of them is set), for what the soak does to it as an
	// operator would (re-attaching an old primary).
	pg *cluster.PGCluster
	my *cluster.MyCluster
}

func (f *fixture) name(i int) string { return fmt.Sprintf("%s%d", f.engine, i+1) }

// index returns the index of the node called name.
func (f *fixture) index(t *testing.T, name string) int {
	t.Helper()
	for i := range f.nodes {
		if f.name(i) == name {
			return i
		}
	}
	t.Fatalf("no node %q", name)
	return -1
}

// pgSyncStandbys is every node's synchronous_standby_names (ALTER SYSTEM once the cluster runs;
// a replica keeps it for when it is promoted), as an operator sets it for failovers: it names
// every node, so whichever is promoted waits for one of the others (a node is never its own
// standby). Set on the first primary only, a promoted replica acknowledged commits no replica
// had (the soak lost writes that way).
const pgSyncStandbys = "ANY 1 (primary, replica1, replica2)"

// startPG starts a PostgreSQL primary and two replicas with synchronous replication (ANY 1):
// every acknowledged commit is on a replica.
func startPG(t *testing.T) *fixture { return startPGWith(t, nil) }

// startPGWith is startPG with the nodes in namespaces of lab (nil: on loopback).
func startPGWith(t *testing.T, lab *cluster.NetLab) *fixture {
	c := cluster.StartPGForTest(t, cluster.PGOptions{SyncStandbys: pgSyncStandbys,
		Settings: []string{"synchronous_commit = on", "full_page_writes = on"}, Lab: lab})
	nodes := c.Nodes()
	for _, r := range c.Replicas {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := pgx.Connect(ctx, r.SuperURL())
		if err == nil {
			_, err = conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '"+pgSyncStandbys+"'")
			conn.Close(context.Background())
		}
		cancel()
		if err != nil {
			t.Fatalf("synchronous_standby_names on %s: %v", r.Name, err)
		}
	}
	f := &fixture{engine: "pg", pg: c}
	for _, n := range nodes {
		f.nodes = append(f.nodes, n)
		f.spec.nodes = append(f.spec.nodes, n.Addr())
		f.lanes = append(f.lanes, n.LaneAddr)
		f.ns = append(f.ns, n.NS)
	}
	f.spec.name, f.spec.engine, f.spec.auth, f.spec.database = "pg", "postgres", "scram-sha-256", c.Opts.AppDB
	f.spec.user, f.spec.password = c.Opts.AppUser, c.Opts.AppPassword
	f.spec.adminUser, f.spec.adminPassword = "postgres", c.Opts.Password
	f.dial = func(ctx context.Context, addr string) (client, error) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", c.Opts.AppUser, c.Opts.AppPassword, addr, c.Opts.AppDB))
		if err != nil {
			return nil, err
		}
		return &pgClient{conn: conn}, nil
	}
	query := func(ctx context.Context, i int, q string, args ...any) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, nodes[i].SuperURL())
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.Background())
		var n int64
		err = conn.QueryRow(ctx, q, args...).Scan(&n)
		return n, err
	}
	f.rows = func(ctx context.Context, i int) (int64, error) {
		return query(ctx, i, "SELECT count(*) FROM acked")
	}
	f.readOnly = func(ctx context.Context, i int) (bool, error) {
		n, err := query(ctx, i, "SELECT (pg_is_in_recovery() OR current_setting('default_transaction_read_only') = 'on')::int")
		return n == 1, err
	}
	f.inRecovery = func(ctx context.Context, i int) (bool, error) {
		n, err := query(ctx, i, "SELECT pg_is_in_recovery()::int")
		return n == 1, err
	}
	f.missing = func(ctx context.Context, i int, acked map[int][]int) (int, error) {
		missing := 0
		for w, seqs := range acked {
			n, err := query(ctx, i, "SELECT count(*) FROM acked WHERE w = $1 AND seq = ANY($2)", w, seqs)
			if err != nil {
				return 0, err
			}
			missing += len(seqs) - int(n)
		}
		return missing, nil
	}
	f.createTable = func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, c.Primary.AppURL())
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "CREATE TABLE acked (w int, seq int, PRIMARY KEY (w, seq))")
		return err
	}
	return f
}

// pgClient is a pgx session through baton.
type pgClient struct{ conn *pgx.Conn }

func (c *pgClient) insert(ctx context.Context, w, seq int) error {
	_, err := c.conn.Exec(ctx, "INSERT INTO acked (w, seq) VALUES ($1, $2)", w, seq)
	return err
}

func (c *pgClient) txInsert(ctx context.Context, w, seq int) error {
	tx, err := c.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "INSERT INTO acked (w, seq) VALUES ($1, $2)", w, seq); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM acked WHERE w = $1", w).Scan(&n); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (c *pgClient) read(ctx context.Context, w int) error {
	var n int
	return c.conn.QueryRow(ctx, "SELECT count(*) FROM acked WHERE w = $1", w).Scan(&n)
}

func (c *pgClient) close() { c.conn.Close(context.Background()) }

// startMy starts a MariaDB primary and two replicas with semi-synchronous replication: every
// acknowledged commit is on a replica.
func startMy(t *testing.T) *fixture { return startMyWith(t, nil) }

// startMyWith is startMy with the nodes in namespaces of lab (nil: on loopback).
func startMyWith(t *testing.T, lab *cluster.NetLab) *fixture {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{SemiSync: true, Lab: lab})
	nodes := c.Nodes()
	f := &fixture{engine: "my", my: c}
	for _, n := range nodes {
		f.nodes = append(f.nodes, n)
		f.spec.nodes = append(f.spec.nodes, n.Addr())
		f.lanes = append(f.lanes, n.LaneAddr)
		f.ns = append(f.ns, n.NS)
	}
	f.spec.name, f.spec.engine, f.spec.auth, f.spec.database = "my", "mysql", "mysql_native_password", c.Opts.AppDB
	f.spec.user, f.spec.password = c.Opts.AppUser, c.Opts.AppPassword
	f.spec.adminUser, f.spec.adminPassword = "root", c.Opts.RootPassword
	f.spec.replUser, f.spec.replPassword = "repl", "repl"
	f.dial = func(ctx context.Context, addr string) (client, error) {
		db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s?timeout=5s&interpolateParams=true", c.Opts.AppUser, c.Opts.AppPassword, addr, c.Opts.AppDB))
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := db.Conn(cctx)
		if err == nil {
			err = conn.PingContext(cctx)
		}
		if err != nil {
			db.Close()
			return nil, err
		}
		return &myClient{db: db, conn: conn}, nil
	}
	query := func(ctx context.Context, i int, q string, args ...any) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		db, err := sql.Open("mysql", nodes[i].RootDSN())
		if err != nil {
			return 0, err
		}
		defer db.Close()
		var n int64
		err = db.QueryRowContext(ctx, q, args...).Scan(&n)
		return n, err
	}
	db := c.Opts.AppDB
	f.rows = func(ctx context.Context, i int) (int64, error) {
		return query(ctx, i, "SELECT count(*) FROM "+db+".acked")
	}
	f.readOnly = func(ctx context.Context, i int) (bool, error) {
		n, err := query(ctx, i, "SELECT @@global.read_only")
		return n == 1, err
	}
	f.inRecovery = func(ctx context.Context, i int) (bool, error) {
		n, err := query(ctx, i, "SELECT count(*) FROM information_schema.global_status WHERE variable_name = 'SLAVE_RUNNING' AND variable_value = 'ON'")
		return n == 1, err
	}
	f.missing = func(ctx context.Context, i int, acked map[int][]int) (int, error) {
		missing := 0
		for w, seqs := range acked {
			if len(seqs) == 0 {
				continue
			}
			in := ""
			for k, s := range seqs {
				if k > 0 {
					in += ","
				}
				in += fmt.Sprint(s)
			}
			n, err := query(ctx, i, fmt.Sprintf("SELECT count(*) FROM %s.acked WHERE w = %d AND seq IN (%s)", db, w, in))
			if err != nil {
				return 0, err
			}
			missing += len(seqs) - int(n)
		}
		return missing, nil
	}
	f.createTable = func(ctx context.Context) error {
		d, err := sql.Open("mysql", c.Primary.AppDSN())
		if err != nil {
			return err
		}
		defer d.Close()
		_, err = d.ExecContext(ctx, "CREATE TABLE acked (w INT, seq INT, PRIMARY KEY (w, seq)) ENGINE=InnoDB")
		return err
	}
	return f
}

// myClient is a go-sql-driver session through baton (one pinned connection: database/sql would
// hide a failed connection behind a retry on another).
type myClient struct {
	db   *sql.DB
	conn *sql.Conn
}

func (c *myClient) insert(ctx context.Context, w, seq int) error {
	_, err := c.conn.ExecContext(ctx, "INSERT INTO acked (w, seq) VALUES (?, ?)", w, seq)
	return err
}

func (c *myClient) txInsert(ctx context.Context, w, seq int) error {
	tx, err := c.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO acked (w, seq) VALUES (?, ?)", w, seq); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM acked WHERE w = ?", w).Scan(&n); err != nil {
		return err
	}
	return tx.Commit()
}

func (c *myClient) read(ctx context.Context, w int) error {
	var n int
	return c.conn.QueryRowContext(ctx, "SELECT count(*) FROM acked WHERE w = ?", w).Scan(&n)
}

func (c *myClient) close() {
	c.conn.Close()
	c.db.Close()
}

// envOptions are a test's baton settings; zero values keep baton's defaults.
type envOptions struct {
	etcd          *etcdtest.Cluster // shared etcd; nil starts one for the test
	probeInterval time.Duration
	grace         time.Duration
	bufferWindow  time.Duration
	// instance, if set, adjusts instance i's configuration (partition tests: addresses on the
	// instance's own lane).
	instance func(i int, s *spec)
}

// env is a database cluster with two baton instances sharing a three-member etcd.
type env struct {
	t    *testing.T
	fx   *fixture
	etcd *etcdtest.Cluster
	b    []*baton
	mon  *monitor
}

// leaseTTL of the instances' etcd sessions: a killed coordinator's role passes to the other
// instance within about this long, and an instance cut off etcd stops writes after half of it.
const leaseTTL = 3 * time.Second

// fastProbes are the failover settings of the scenario tests: a dead primary is noticed in about
// 0.4 s (two failed probes) and replaced after 0.5 s more, so the scenarios stay short; the
// kill -9 measurement uses baton's defaults instead.
var fastProbes = envOptions{probeInterval: 200 * time.Millisecond, grace: 500 * time.Millisecond}

var prefixSeq int

// newEnv starts fx's two baton instances (b0, b1) and waits until both route writes to the
// first node and reads to both replicas, then creates the load's table.
func newEnv(t *testing.T, fx *fixture, o envOptions) *env {
	t.Helper()
	e := &env{t: t, fx: fx, etcd: o.etcd}
	if e.etcd == nil {
		e.etcd = etcdtest.StartForTest(t, 3)
	}
	prefixSeq++
	s := fx.spec
	s.endpoints, s.prefix, s.leaseTTL = e.etcd.Endpoints(), fmt.Sprintf("/chaos-%d-%d", time.Now().UnixNano(), prefixSeq), leaseTTL
	s.probeInterval, s.grace, s.bufferWindow = o.probeInterval, o.grace, o.bufferWindow
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := fx.createTable(ctx); err != nil {
		t.Fatalf("create table: %v", err)
	}
	for i := 1; i < len(fx.nodes); i++ {
		cluster.Eventually(t, 30*time.Second, "the table reaches "+fx.name(i), func() (bool, error) {
			_, err := fx.rows(ctx, i)
			return err == nil, err
		})
	}
	for i := range 2 {
		si := s
		if o.instance != nil {
			si.nodes = append([]string(nil), s.nodes...)
			o.instance(i, &si)
		}
		e.b = append(e.b, startBaton(t, si, fmt.Sprintf("b%d", i)))
	}
	e.waitAll(60*time.Second, "both instances ready", stableOn(fx.name(0), len(fx.nodes)-1))
	e.mon = startMonitor(t, e.b...)
	return e
}

// startLoad starts writers and readers through both instances and waits until each instance
// has acknowledged a write.
func (e *env) startLoad(writers, readers int) *load {
	e.t.Helper()
	l := startLoad(e.t, e.fx.dial, e.addrs(), writers, readers)
	for i := range e.b {
		l.ackedAfter(e.t, time.Now(), i, 20*time.Second)
	}
	return l
}

// mustStatus is b's cluster status; the test fails when the admin API does not answer.
func (e *env) mustStatus(b *baton) admin.ClusterStatus {
	e.t.Helper()
	st, err := b.status()
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) addrs() []string {
	out := make([]string, len(e.b))
	for i, b := range e.b {
		out[i] = b.addr
	}
	return out
}

// waitAll waits until every instance still running satisfies ok.
func (e *env) waitAll(d time.Duration, what string, ok func(admin.ClusterStatus) bool) admin.ClusterStatus {
	e.t.Helper()
	var st admin.ClusterStatus
	for _, b := range e.b {
		if !b.exited() {
			st = waitStatus(e.t, b, d, what, ok)
		}
	}
	return st
}

// coordinator returns the index of the instance coordinating the cluster.
func (e *env) coordinator() int {
	e.t.Helper()
	st := e.waitAll(10*time.Second, "coordinator known", func(st admin.ClusterStatus) bool { return st.Coordinator != "" })
	for i, b := range e.b {
		if b.name == st.Coordinator {
			return i
		}
	}
	e.t.Fatalf("coordinator %q is none of the instances", st.Coordinator)
	return -1
}

// pollStatus polls b's status until ok holds or d passes.
func pollStatus(b *baton, d time.Duration, ok func(admin.ClusterStatus) bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && !b.exited() {
		if st, err := b.status(); err == nil && ok(st) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// engines are the fixtures the scenarios run on, each as its own test.
var engines = map[string]func(*testing.T) *fixture{"PG": startPG, "My": startMy}
