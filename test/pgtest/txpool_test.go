package pgtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// pool_mode transaction: many clients share a pool of two connections per node, and each sees
// only its own session state — settings, SET LOCAL, prepared statements of the same name with
// different text — proven by what each client reads back. In session mode the same load cannot
// run at all (20 sessions would each hold a primary connection).
func TestTransactionPoolingKeepsEachSessionsState(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = 2
	})
	u := b.URL(pg)
	tbl := createTable(t, "txpool", "client int, round int")
	const clients, rounds = 20, 15
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	// Every client finishes its first round before any goes on: all 20 sessions are open and
	// have used the primary and a replica at once, which session pooling (a connection per
	// session) cannot serve with two connections per node.
	var firstRound sync.WaitGroup
	firstRound.Add(clients)
	allStarted := make(chan struct{})
	go func() { firstRound.Wait(); close(allStarted) }()
	maxOpen := 0
	var mu sync.Mutex
	watch := func() {
		for _, st := range b.Inst.Clusters()[0].PG.PoolStats() {
			mu.Lock()
			maxOpen = max(maxOpen, st[0])
			mu.Unlock()
		}
	}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				arrived := sync.OnceFunc(firstRound.Done)
				defer arrived() // (a client that fails early must not hold the others up)
				c, err := pgx.Connect(ctx, u)
				if err != nil {
					return err
				}
				defer c.Close(context.Background())
				me := fmt.Sprintf("client-%d", i)
				if _, err := c.Exec(ctx, "SET baton_test.me = '"+me+"'"); err != nil {
					return err
				}
				if _, err := c.Exec(ctx, fmt.Sprintf("SET statement_timeout = %d", 50001+i)); err != nil {
					return err
				}
				// The same statement name in every session, a different text in each.
				if _, err := c.PgConn().Prepare(ctx, "mine", fmt.Sprintf("select %d::int, current_setting('baton_test.me')", i), nil); err != nil {
					return err
				}
				for r := range rounds {
					if r == 1 {
						arrived()
						select {
						case <-allStarted:
						case <-ctx.Done():
							return fmt.Errorf("%s: the other clients did not finish their first round", me)
						}
					}
					watch()
					var got string
					var st string
					if err := c.QueryRow(ctx, "select current_setting('baton_test.me'), current_setting('statement_timeout')").Scan(&got, &st); err != nil {
						return err
					}
					if want := fmt.Sprintf("%dms", 50001+i); got != me || st != want {
						return fmt.Errorf("%s round %d: settings %q, %q; want %q, %q", me, r, got, st, me, want)
					}
					rr := c.PgConn().ExecPrepared(ctx, "mine", nil, nil, nil).Read()
					if rr.Err != nil {
						return fmt.Errorf("%s round %d: prepared statement: %w", me, r, rr.Err)
					}
					if len(rr.Rows) != 1 || string(rr.Rows[0][0]) != fmt.Sprint(i) || string(rr.Rows[0][1]) != me {
						return fmt.Errorf("%s round %d: prepared statement answered %q", me, r, rr.Rows)
					}
					err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, "SET LOCAL baton_test.me = 'local-"+me+"'"); err != nil {
							return err
						}
						if _, err := tx.Exec(ctx, fmt.Sprintf("insert into %s values (%d, %d)", tbl, i, r)); err != nil {
							return err
						}
						var local string
						if err := tx.QueryRow(ctx, "select current_setting('baton_test.me')").Scan(&local); err != nil {
							return err
						}
						if local != "local-"+me {
							return fmt.Errorf("%s round %d: SET LOCAL inside the transaction reads %q", me, r, local)
						}
						return nil
					})
					if err != nil {
						return err
					}
					var n int
					if err := c.QueryRow(ctx, fmt.Sprintf("select count(*) from %s where client = %d", tbl, i)).Scan(&n); err != nil {
						return err
					}
					if n != r+1 {
						return fmt.Errorf("%s round %d: reads %d of its own rows; want %d", me, r, n, r+1)
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if maxOpen > 2 {
		t.Fatalf("a node had %d backend connections; the pool allows 2", maxOpen)
	}
	t.Logf("%d clients × %d rounds on at most %d connections per node", clients, rounds, maxOpen)
}

// pool_mode transaction: a session with pinned state (a temporary table) keeps its connection
// while the state lives; the others go on around it, and it is released when the state goes.
func TestTransactionPoolingPinKeepsTheConnection(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = 2
	})
	u := b.URL(pg)
	ctx := ctxT(t)
	pinned := connectURL(t, u)
	if _, err := pinned.Exec(ctx, "create temp table tp (x int)"); err != nil {
		t.Fatal(err)
	}
	var pid1, pid2 int
	if err := pinned.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid1); err != nil {
		t.Fatal(err)
	}
	for range 5 { // others share the remaining connection
		o := connectURL(t, u)
		if _, err := o.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		o.Close(ctx)
	}
	if _, err := pinned.Exec(ctx, "insert into tp values (1)"); err != nil {
		t.Fatalf("the pinned session lost its temp table: %v", err)
	}
	if err := pinned.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 {
		t.Fatalf("the pinned session moved from backend %d to %d", pid1, pid2)
	}
	if got := b.Inst.Clusters()[0].PG.Metrics().Pinned.Snapshot()["temp_table"]; got != 1 {
		t.Fatalf("baton_pinned_sessions{temp_table} = %d; want 1", got)
	}
	if _, err := pinned.Exec(ctx, "discard temp"); err != nil {
		t.Fatal(err)
	}
	if got := b.Inst.Clusters()[0].PG.Metrics().Pinned.Snapshot()["temp_table"]; got != 0 {
		t.Fatalf("after DISCARD TEMP baton_pinned_sessions{temp_table} = %d; want 0", got)
	}
}

// pool_mode transaction: prepared statements live on the connections under baton's own names,
// shared by every session that prepares the same text. One session's Close leaves another's
// statement working; a bound of 3 statements per connection closes and re-prepares as needed.
func TestTransactionPoolingSharedStatements(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = 1
		cl.Pool.MaxPreparedStatements = 3
	})
	u := b.URL(pg)
	ctx := ctxT(t)
	a, c := connectURL(t, u), connectURL(t, u)
	const q = "select $1::int * 7"
	if _, err := a.PgConn().Prepare(ctx, "a_name", q, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PgConn().Prepare(ctx, "c_name", q, nil); err != nil {
		t.Fatal(err)
	}
	run := func(conn *pgx.Conn, name string, arg int) string {
		rr := conn.PgConn().ExecPrepared(ctx, name, [][]byte{[]byte(fmt.Sprint(arg))}, nil, nil).Read()
		if rr.Err != nil {
			return describeErr(rr.Err)
		}
		return string(rr.Rows[0][0])
	}
	if got := run(a, "a_name", 2); got != "14" {
		t.Fatalf("a: %s", got)
	}
	if err := a.PgConn().Deallocate(ctx, "a_name"); err != nil {
		t.Fatal(err)
	}
	if got := run(c, "c_name", 3); got != "21" {
		t.Fatalf("c after a closed the same text under its own name: %s", got)
	}
	if got := run(a, "a_name", 2); !strings.Contains(got, "26000") {
		t.Fatalf("a's closed statement answered %q; want 26000 (does not exist), as directly", got)
	}
	// Ten statements in rotation through a bound of three per connection.
	for i := range 10 {
		if _, err := c.PgConn().Prepare(ctx, fmt.Sprintf("r%d", i), fmt.Sprintf("select %d + $1::int", i*100), nil); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		for i := range 10 {
			if got, want := run(c, fmt.Sprintf("r%d", i), round), fmt.Sprint(i*100+round); got != want {
				t.Fatalf("round %d statement r%d: %s; want %s", round, i, got, want)
			}
		}
	}
}
