package pgtest

import (
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestTempTablePinsToPrimary(t *testing.T) {
	for _, m := range twoModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := connect(t, m.mode)
			tmp := uniqueName("tmp")
			if _, err := c.Exec(ctx, "CREATE TEMP TABLE "+tmp+" (id int)"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "INSERT INTO "+tmp+" VALUES (1), (2)"); err != nil {
				t.Fatal(err)
			}
			var n, port int
			var rep bool
			if err := c.QueryRow(ctx, "SELECT count(*), inet_server_port(), pg_is_in_recovery() FROM "+tmp).Scan(&n, &port, &rep); err != nil {
				t.Fatalf("reading the temp table: %v", err)
			}
			wantPrimary(t, "a read of a temp table", port, rep)
			if n != 2 {
				t.Fatalf("temp table read saw %d rows; want 2", n)
			}
			port, rep = where(t, c, ctx, "")
			wantPrimary(t, "any read after CREATE TEMP TABLE", port, rep)

			// DISCARD TEMP drops the temp state; reads may leave the primary again (once a
			// replica has the session's writes: read_your_writes, the default, waits at most
			// read_your_writes_wait for one, which a loaded test machine can exceed).
			if _, err := c.Exec(ctx, "DISCARD TEMP"); err != nil {
				t.Fatal(err)
			}
			caughtUp(t)
			port, rep = where(t, c, ctx, "")
			wantReplica(t, "a read after DISCARD TEMP", port, rep)
		})
	}
}

// settingOnReplica reads current_setting(name) and proves it ran on a replica.
func settingOnReplica(t *testing.T, c *pgx.Conn, name string) string {
	t.Helper()
	var v string
	var port int
	var rep bool
	if err := c.QueryRow(ctxT(t), "SELECT current_setting('"+name+"'), inet_server_port(), pg_is_in_recovery()").Scan(&v, &port, &rep); err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	wantReplica(t, "a read of "+name, port, rep)
	return v
}

func TestSetReplayedOnReplica(t *testing.T) {
	cases := []struct {
		name     string
		mode     pgx.QueryExecMode
		extended bool // send SET itself through the extended protocol, as JDBC does
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol, false},
		{"cache-statement", pgx.QueryExecModeCacheStatement, false},
		{"extended-set", pgx.QueryExecModeCacheStatement, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := connect(t, tc.mode)
			set := func(q string) {
				t.Helper()
				if tc.extended {
					rows, err := c.Query(ctx, q)
					if err == nil {
						rows.Close()
						err = rows.Err()
					}
					if err != nil {
						t.Fatalf("%s: %v", q, err)
					}
					return
				}
				if _, err := c.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			app := uniqueName("app")
			set("SET application_name = '" + app + "'")
			if got := settingOnReplica(t, c, "application_name"); got != app {
				t.Fatalf("application_name on the replica = %q; want %q", got, app)
			}
			set("SET TimeZone = 'Asia/Kathmandu'")
			if got := settingOnReplica(t, c, "TimeZone"); got != "Asia/Kathmandu" {
				t.Fatalf("TimeZone on the replica = %q", got)
			}

			// search_path changes name resolution on the replica.
			sch := uniqueName("sch")
			setup(t, "CREATE SCHEMA "+sch, "CREATE TABLE "+sch+".sp (v text)", "INSERT INTO "+sch+".sp VALUES ('"+sch+"')")
			set("SET search_path = " + sch + ", public")
			var v string
			var port int
			var rep bool
			if err := c.QueryRow(ctx, "SELECT v, inet_server_port(), pg_is_in_recovery() FROM sp").Scan(&v, &port, &rep); err != nil {
				t.Fatalf("unqualified read after SET search_path: %v", err)
			}
			wantReplica(t, "an unqualified read after SET search_path", port, rep)
			if v != sch {
				t.Fatalf("read %q; want %q", v, sch)
			}

			// SET in a rolled-back transaction is undone; in a committed one it stays.
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SET application_name = 'rolled_back'"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if got := settingOnReplica(t, c, "application_name"); got != app {
				t.Fatalf("after a rolled-back SET, application_name on the replica = %q; want %q", got, app)
			}
			app2 := uniqueName("app")
			tx, err = c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SET application_name = '"+app2+"'"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if got := settingOnReplica(t, c, "application_name"); got != app2 {
				t.Fatalf("after a committed SET, application_name on the replica = %q; want %q", got, app2)
			}
			// And the primary has the same session state.
			if err := c.QueryRow(ctx, "/* baton:primary */ SELECT current_setting('application_name'), inet_server_port(), pg_is_in_recovery()").Scan(&v, &port, &rep); err != nil {
				t.Fatal(err)
			}
			wantPrimary(t, "a hinted read", port, rep)
			if v != app2 {
				t.Fatalf("application_name on the primary = %q; want %q", v, app2)
			}
		})
	}
}

func TestResetAndDiscardAll(t *testing.T) {
	ctx := ctxT(t)
	var def string
	if err := direct(t, pg.Primary).QueryRow(ctx, "SELECT current_setting('statement_timeout')").Scan(&def); err != nil {
		t.Fatal(err)
	}
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	exec := func(q string) {
		t.Helper()
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	check := func(what, want string) {
		t.Helper()
		if got := settingOnReplica(t, c, "statement_timeout"); got != want {
			t.Fatalf("%s: statement_timeout on the replica = %q; want %q", what, got, want)
		}
	}
	exec("SET statement_timeout = '12345ms'")
	check("after SET", "12345ms")
	exec("RESET statement_timeout")
	check("after RESET", def)
	exec("SET statement_timeout = '23456ms'")
	check("after a second SET", "23456ms")
	exec("RESET ALL")
	check("after RESET ALL", def)
	exec("SET statement_timeout = '34567ms'")
	check("after a third SET", "34567ms")
	exec("DISCARD ALL")
	check("after DISCARD ALL", def)
	var v string
	var port int
	var rep bool
	if err := c.QueryRow(ctx, "/* baton:primary */ SELECT current_setting('statement_timeout'), inet_server_port(), pg_is_in_recovery()").Scan(&v, &port, &rep); err != nil {
		t.Fatal(err)
	}
	wantPrimary(t, "a hinted read", port, rep)
	if v != def {
		t.Fatalf("after DISCARD ALL, statement_timeout on the primary = %q; want %q", v, def)
	}
	// The session keeps working normally after DISCARD ALL.
	exec("SET statement_timeout = '45678ms'")
	check("after a SET following DISCARD ALL", "45678ms")
}

func TestTxReadsOwnWrite(t *testing.T) {
	for _, m := range twoModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			tbl := createTable(t, "owntx", "id int PRIMARY KEY, who int")
			c := connect(t, m.mode)
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+tbl+" VALUES (1, inet_server_port())"); err != nil {
				t.Fatal(err)
			}
			var n, port int
			var rep bool
			if err := tx.QueryRow(ctx, "SELECT count(*), inet_server_port(), pg_is_in_recovery() FROM "+tbl).Scan(&n, &port, &rep); err != nil {
				t.Fatal(err)
			}
			wantPrimary(t, "a read in a read-write transaction", port, rep)
			if n != 1 {
				t.Fatalf("the transaction saw %d rows of its own; want 1", n)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if got := queryInt(t, direct(t, pg.Primary), "SELECT count(*) FROM "+tbl); got != 0 {
				t.Fatalf("after ROLLBACK the primary holds %d rows; want 0", got)
			}
			if got := queryInt(t, c, "/* baton:primary */ SELECT count(*) FROM "+tbl); got != 0 {
				t.Fatalf("after ROLLBACK the session sees %d rows; want 0", got)
			}
		})
	}
}

func TestBeginReadOnly(t *testing.T) {
	for _, m := range twoModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := connect(t, m.mode)
			run := func(label string, begin func() error, end func() error) {
				t.Helper()
				if err := begin(); err != nil {
					t.Fatal(err)
				}
				first, firstPID := 0, 0
				for i := 0; i < 4; i++ {
					var port, pid int
					var rep bool
					var ro string
					if err := c.QueryRow(ctx, "SELECT inet_server_port(), pg_is_in_recovery(), pg_backend_pid(), current_setting('transaction_read_only')").Scan(&port, &rep, &pid, &ro); err != nil {
						t.Fatal(err)
					}
					wantReplica(t, "a read after "+label, port, rep)
					if ro != "on" {
						t.Fatalf("transaction_read_only = %q", ro)
					}
					if i == 0 {
						first, firstPID = port, pid
					} else if port != first || pid != firstPID {
						t.Fatalf("%s: statement %d ran on port %d pid %d; the first on %d pid %d", label, i, port, pid, first, firstPID)
					}
				}
				if err := end(); err != nil {
					t.Fatal(err)
				}
			}
			var tx pgx.Tx
			run("pgx BeginTx(ReadOnly)", func() (err error) {
				tx, err = c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
				return err
			}, func() error { return tx.Commit(ctx) })
			run("BEGIN READ ONLY", func() error { _, err := c.Exec(ctx, "BEGIN READ ONLY"); return err },
				func() error { _, err := c.Exec(ctx, "COMMIT"); return err })
			run("START TRANSACTION READ ONLY", func() error { _, err := c.Exec(ctx, "START TRANSACTION READ ONLY"); return err },
				func() error { _, err := c.Exec(ctx, "ROLLBACK"); return err })
		})
	}
}

func TestWriteInReadOnlyTransaction(t *testing.T) {
	ctx := ctxT(t)
	tbl := createTable(t, "rotx", "id int PRIMARY KEY")
	ins := "INSERT INTO " + tbl + " VALUES (1)"

	// What PostgreSQL itself answers.
	d := direct(t, pg.Primary)
	if _, err := d.Exec(ctx, "BEGIN READ ONLY"); err != nil {
		t.Fatal(err)
	}
	_, derr := d.Exec(ctx, ins)
	d.Exec(ctx, "ROLLBACK")
	if sqlState(derr) != "25006" {
		t.Fatalf("PostgreSQL answered %v", derr)
	}

	before := baton.Inst.Clusters()[0].PG.Metrics().Misroutes()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	port, rep := where(t, tx, ctx, "")
	wantReplica(t, "BEGIN READ ONLY", port, rep)
	_, err = tx.Exec(ctx, ins)
	if sqlState(err) != "25006" || err.Error() != derr.Error() {
		t.Fatalf("write in a read-only transaction: %v; want %v", err, derr)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); sqlState(err) != "25P02" {
		t.Fatalf("next statement in the failed transaction: %v; want 25P02", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := baton.Inst.Clusters()[0].PG.Metrics().Misroutes(); got != before {
		t.Fatalf("a write inside a read-only transaction was counted as a misroute (%d → %d)", before, got)
	}
	if got := queryInt(t, d, "SELECT count(*) FROM "+tbl); got != 0 {
		t.Fatalf("the primary holds %d rows; want 0", got)
	}
	port, rep = where(t, c, ctx, "")
	wantReplica(t, "a read after the failed transaction", port, rep)
}

func TestMisrouteRecovered(t *testing.T) {
	tbl := createTable(t, "misroute", "id serial PRIMARY KEY, who int")
	fn := uniqueName("writes")
	setup(t, "CREATE FUNCTION "+fn+"() RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO "+tbl+" (who) VALUES (inet_server_port()) RETURNING id'")
	for _, m := range twoModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := connect(t, m.mode)
			metrics := baton.Inst.Clusters()[0].PG.Metrics()
			before := metrics.Misroutes()
			var id, port int
			var rep bool
			if err := c.QueryRow(ctx, "/* baton:replica */ SELECT "+fn+"(), inet_server_port(), pg_is_in_recovery()").Scan(&id, &port, &rep); err != nil {
				t.Fatalf("a write hinted to a replica: %v (the replica's refusal must be hidden)", err)
			}
			wantPrimary(t, "the retried write", port, rep)
			if got := metrics.Misroutes(); got <= before {
				t.Fatalf("Misroutes = %d, was %d: the statement never went to a replica", got, before)
			}
			p := direct(t, pg.Primary)
			var who int
			if err := p.QueryRow(ctx, "SELECT who FROM "+tbl+" WHERE id = $1", id).Scan(&who); err != nil {
				t.Fatalf("row %d on the primary: %v", id, err)
			}
			if who != pg.Primary.Port {
				t.Fatalf("row written by port %d", who)
			}
			if n := queryInt(t, p, "SELECT count(*) FROM "+tbl+" WHERE id >= $1", id); n != 1 {
				t.Fatalf("the retried write left %d rows; want exactly 1", n)
			}
			port, rep = where(t, c, ctx, "")
			wantReplica(t, "a read after the recovered misroute", port, rep)
		})
	}
}

func TestAdvisoryLockPins(t *testing.T) {
	for _, m := range twoModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			key := int64(rand.IntN(1<<30)) + 1
			c := connect(t, m.mode)
			p := direct(t, pg.Primary)
			var port int
			var rep bool
			if err := c.QueryRow(ctx, "SELECT inet_server_port(), pg_is_in_recovery() FROM pg_advisory_lock($1::bigint)", key).Scan(&port, &rep); err != nil {
				t.Fatal(err)
			}
			wantPrimary(t, "pg_advisory_lock", port, rep)
			port, rep = where(t, c, ctx, "")
			wantPrimary(t, "a read while holding a session advisory lock", port, rep)
			var got bool
			if err := p.QueryRow(ctx, "SELECT pg_try_advisory_lock($1::bigint)", key).Scan(&got); err != nil || got {
				t.Fatalf("another session took the lock (%v, %v): baton did not keep it", got, err)
			}
			if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
				t.Fatal(err)
			}
			if err := p.QueryRow(ctx, "SELECT pg_try_advisory_lock($1::bigint)", key).Scan(&got); err != nil || !got {
				t.Fatalf("the lock is still held after pg_advisory_unlock_all (%v, %v)", got, err)
			}
			p.Exec(ctx, "SELECT pg_advisory_unlock_all()")
			port, rep = where(t, c, ctx, "")
			wantReplica(t, "a read after pg_advisory_unlock_all", port, rep)
		})
	}
}

func TestNextvalOnPrimary(t *testing.T) {
	seq := uniqueName("seq")
	setup(t, "CREATE SEQUENCE "+seq)
	for _, m := range twoModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := connect(t, m.mode)
			var v, port int
			var rep bool
			if err := c.QueryRow(ctx, "SELECT nextval('"+seq+"'), inet_server_port(), pg_is_in_recovery()").Scan(&v, &port, &rep); err != nil {
				t.Fatal(err)
			}
			wantPrimary(t, "SELECT nextval()", port, rep)
			// currval is session state of the node that ran nextval.
			var cur int
			if err := c.QueryRow(ctx, "SELECT currval('"+seq+"'), inet_server_port(), pg_is_in_recovery()").Scan(&cur, &port, &rep); err != nil {
				t.Fatalf("currval after nextval: %v", err)
			}
			if cur != v {
				t.Fatalf("currval = %d; nextval returned %d", cur, v)
			}
			wantPrimary(t, "SELECT currval()", port, rep)
		})
	}
}
