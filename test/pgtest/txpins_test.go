package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// pool_mode transaction, every PostgreSQL pin reason: while the state lives the session keeps
// its primary connection — with one connection per node, another client's write waits and times
// out (57P03), which is the proof by results — and the metric names the reason; once the client
// drops the state (by the statement that ends it, not only the catch-all ones) the connection
// is free again and the other client's write runs.
func TestTransactionPoolingEveryPinReason(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = 1
		cl.Pool.AcquireTimeout = topology.Duration(300 * time.Millisecond)
	})
	u := b.URL(pg)
	tbl := createTable(t, "txpins", "i int")
	pinned := func() map[string]int64 { return b.Inst.Clusters()[0].PG.Metrics().Pinned.Snapshot() }
	cases := []struct {
		reason, create, use, release string
	}{
		{"temp_table", "create temp table pin_t (i int)", "insert into pin_t values (1)", "drop table pin_t"},
		{"advisory_lock", "select pg_advisory_lock(4242)", "select 1", "select pg_advisory_unlock(4242)"},
		{"hold_cursor", "begin; declare pin_c cursor with hold for select 1; commit", "fetch next from pin_c", "close pin_c"},
		{"sql_prepare", "prepare pin_p as select 1", "execute pin_p", "deallocate pin_p"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			ctx := ctxT(t)
			s := connectURL(t, u)
			simple := func(sql string) error {
				_, err := s.PgConn().Exec(ctx, sql).ReadAll()
				return err
			}
			if err := simple(tc.create); err != nil {
				t.Fatalf("%s: %v", tc.create, err)
			}
			if got := pinned()[tc.reason]; got != 1 {
				t.Fatalf("baton_pinned_sessions{%s} = %d while the state lives; want 1", tc.reason, got)
			}
			other := func() error {
				o, err := pgx.Connect(ctx, u)
				if err != nil {
					return err
				}
				defer o.Close(context.Background())
				_, err = o.Exec(ctx, "insert into "+tbl+" values (1)")
				return err
			}
			if err := other(); sqlState(err) != "57P03" {
				t.Fatalf("another client's write while %s pins the only primary connection: %v; want 57P03 (pool timeout)", tc.reason, err)
			}
			if err := simple(tc.use); err != nil {
				t.Fatalf("the pinned session lost its state: %s: %v", tc.use, err)
			}
			if err := simple(tc.release); err != nil {
				t.Fatalf("%s: %v", tc.release, err)
			}
			if got := pinned()[tc.reason]; got != 0 {
				t.Fatalf("baton_pinned_sessions{%s} = %d after %q; want 0", tc.reason, got, tc.release)
			}
			if err := other(); err != nil {
				t.Fatalf("another client's write after %q: %v", tc.release, err)
			}
		})
	}
}

// pool_mode transaction: a backend killed under a pinned session ends that client's session
// with the server's FATAL (its state is gone, as on a direct connection); an unpinned session
// whose pooled connections were killed does not notice — its next statement gets a new one.
func TestTransactionPoolingBackendKilled(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = 4
	})
	u := b.URL(pg)
	tbl := createTable(t, "txkill", "i int")
	ctx := ctxT(t)
	pinnedS, free := connectURL(t, u), connectURL(t, u)
	if _, err := pinnedS.Exec(ctx, "create temp table kill_t (i int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := free.Exec(ctx, "insert into "+tbl+" values (1)"); err != nil {
		t.Fatal(err)
	}
	su, err := pgx.Connect(ctx, pg.Primary.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(context.Background())
	app := pg.Opts.AppUser
	if _, err := su.Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", app); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 10*time.Second, "the app user's backends on the primary are gone", func() (bool, error) {
		var n int
		err := su.QueryRow(ctx, "select count(*) from pg_stat_activity where usename = $1", app).Scan(&n)
		return n == 0, err
	})
	if _, err := free.Exec(ctx, "insert into "+tbl+" values (2)"); err != nil {
		t.Fatalf("an unpinned session after its pooled connections were killed: %v", err)
	}
	_, err = pinnedS.Exec(ctx, "insert into kill_t values (1)")
	if code := sqlState(err); code != "57P01" {
		t.Fatalf("the pinned session after its backend was killed: %v; want the server's FATAL 57P01", err)
	}
	if err := pinnedS.Ping(ctx); err == nil {
		t.Fatal("the pinned session still works after its backend (and temp table) died")
	}
	if got := queryInt(t, free, "select count(*) from "+tbl+" /* baton:primary */"); got != 2 {
		t.Fatalf("rows %d; want 2", got)
	}
}

// pool_mode transaction: a connection one session left running under another identity (SET
// SESSION AUTHORIZATION, SET ROLE) serves the next session as the user that session logged in
// as — RESET ALL alone would leave the authorization in place.
func TestTransactionPoolingResetsAuthorization(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = 1
	})
	ctx := ctxT(t)
	su := func() *pgx.Conn {
		cfg, err := pgx.ParseConfig(b.URL(pg))
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Password = "postgres", pg.Opts.Password
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	a, bs := su(), su()
	if _, err := a.Exec(ctx, "set session authorization "+pg.Opts.AppUser); err != nil {
		t.Fatal(err)
	}
	var who string
	if err := a.QueryRow(ctx, "select session_user || ' ' || current_user /* baton:primary */").Scan(&who); err != nil {
		t.Fatal(err)
	}
	if want := pg.Opts.AppUser + " " + pg.Opts.AppUser; who != want {
		t.Fatalf("the session that set its authorization: %q; want %q", who, want)
	}
	if err := bs.QueryRow(ctx, "select session_user || ' ' || current_user /* baton:primary */").Scan(&who); err != nil {
		t.Fatal(err)
	}
	if who != "postgres postgres" {
		t.Fatalf("the next session on the shared connection runs as %q; want postgres postgres", who)
	}
	if err := a.QueryRow(ctx, "select session_user || ' ' || current_user /* baton:primary */").Scan(&who); err != nil || who != pg.Opts.AppUser+" "+pg.Opts.AppUser {
		t.Fatalf("the first session after sharing: %q, %v", who, err)
	}
}
