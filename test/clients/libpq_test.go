package clients

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	_ "github.com/lib/pq" // registers the "postgres" database/sql driver
)

// libpqClient is the Go lib/pq driver through database/sql, in-process.
var libpqClient = &client{
	name: "lib/pq",
	pg:   true,
	need: func() error { return nil },
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		o := &out{}
		f := libpqScenarios[sc.name]
		if f == nil {
			panic("BUG: lib/pq has no scenario " + sc.name)
		}
		db, err := sql.Open("postgres", tg.pgURL())
		if err != nil {
			o.err("open", err)
			return o.String()
		}
		defer db.Close()
		// One connection, one session: a read after the session's own write is what
		// read_your_writes guarantees; across two pooled connections it is not.
		db.SetMaxOpenConns(1)
		f(ctx, o, db, T)
		return o.String()
	},
	scens: []scenario{
		{name: "basic", setup: pgTypes},
		{name: "errors", setup: pgStd, want: []string{"42601", "23505", "22012"}},
		{name: "write_params", setup: pgStd, want: []string{"insert: 1 affected", "row: \"4\""}},
		{name: "tx", setup: pgStd},
		{name: "prepared", setup: pgStd},
		{name: "begin_cancel_loop", want: []string{"failures: 0"}},
	},
}

var libpqScenarios = map[string]func(context.Context, *out, *sql.DB, string){
	"basic": func(ctx context.Context, o *out, db *sql.DB, T string) {
		myQuery(ctx, o, db, "all rows", "SELECT * FROM "+T+" ORDER BY id")
		myQuery(ctx, o, db, "params", "SELECT $1::int + 1, $2::text, $3::bytea, $4::numeric, $5::text IS NULL", 41, "ünï 🐘", []byte{0, 1, 255}, "3.14159", nil)
		myQuery(ctx, o, db, "literals", "SELECT 1::int2, 3::int8, 1.5::float4, '{\"a\":1}'::json, ARRAY['a',NULL,'c'], '2001-02-03'::date, NULL::text")
	},
	"errors": func(ctx context.Context, o *out, db *sql.DB, T string) {
		myExec(ctx, o, db, "syntax", "SELEC 1")
		myExec(ctx, o, db, "unique", "INSERT INTO "+T+" VALUES ($1, $2)", 1, "dup")
		myQuery(ctx, o, db, "division", "SELECT 1 / $1::int", 0)
		myQuery(ctx, o, db, "undefined table", "SELECT * FROM no_such_table_x")
		myQuery(ctx, o, db, "after errors", "SELECT count(*) FROM "+T)
	},
	// Parameterized writes outside a transaction: lib/pq sends Parse+Describe+Sync, then
	// Bind+Execute+Sync for the unnamed statement. (This suite found baton answering the Bind
	// with 26000 "unnamed prepared statement does not exist"; fixed since.)
	"write_params": func(ctx context.Context, o *out, db *sql.DB, T string) {
		myExec(ctx, o, db, "insert", "INSERT INTO "+T+" VALUES ($1, $2)", 4, "four")
		myExec(ctx, o, db, "update", "UPDATE "+T+" SET v = $1 WHERE id > $2", "x", 2)
		myExec(ctx, o, db, "unique", "INSERT INTO "+T+" VALUES ($1, $2)", 1, "dup")
		myQuery(ctx, o, db, "count", "SELECT count(*) FROM "+T)
	},
	"tx": func(ctx context.Context, o *out, db *sql.DB, T string) {
		tx, err := db.BeginTx(ctx, nil)
		o.err("begin", err)
		if err == nil {
			myExec(ctx, o, tx, "insert in tx", "INSERT INTO "+T+" VALUES (10, 'ten')")
			o.err("rollback", tx.Rollback())
		}
		tx, err = db.BeginTx(ctx, nil)
		o.err("begin", err)
		if err == nil {
			myExec(ctx, o, tx, "insert in tx", "INSERT INTO "+T+" VALUES (11, 'eleven')")
			myExec(ctx, o, tx, "failing insert", "INSERT INTO "+T+" VALUES (1, 'dup')")
			myQuery(ctx, o, tx, "in failed tx", "SELECT 1")
			o.err("commit of failed tx", tx.Commit())
		}
		tx, err = db.BeginTx(ctx, nil)
		o.err("begin", err)
		if err == nil {
			myExec(ctx, o, tx, "insert in tx", "INSERT INTO "+T+" VALUES (12, 'twelve')")
			o.err("commit", tx.Commit())
		}
		tx, err = db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		o.err("begin read only", err)
		if err == nil {
			myQuery(ctx, o, tx, "read-only tx sees the commit", "SELECT id, v FROM "+T+" ORDER BY id")
			o.err("commit", tx.Commit())
		}
	},
	"prepared": func(ctx context.Context, o *out, db *sql.DB, T string) {
		c, err := db.Conn(ctx)
		if err != nil {
			o.err("conn", err)
			return
		}
		defer c.Close()
		st, err := c.PrepareContext(ctx, "SELECT v FROM "+T+" WHERE id = $1")
		o.err("prepare", err)
		if err != nil {
			return
		}
		for i := range 15 {
			myQuery(ctx, o, stmtQ{st}, "execute", "", i%4)
		}
		o.err("close", st.Close())
		ins, err := c.PrepareContext(ctx, "INSERT INTO "+T+" VALUES ($1, $2)")
		o.err("prepare insert", err)
		if err == nil {
			for i := range 12 {
				myExec(ctx, o, stmtQ{ins}, "insert", "", 100+i, fmt.Sprint("v", i))
			}
			myExec(ctx, o, stmtQ{ins}, "insert dup", "", 100, "dup")
			ins.Close()
		}
		myQuery(ctx, o, c, "count", "SELECT count(*) FROM "+T)
	},
	// issue 9 PG item 5: BeginTx, cancel its context, Rollback, Begin again, 1000 times. lib/pq
	// sends a CancelRequest when the context ends; it must never hit the next BEGIN.
	"begin_cancel_loop": func(ctx context.Context, o *out, db *sql.DB, T string) {
		fails := 0
		errs := map[string]int{}
		for range 1000 {
			cctx, cancel := context.WithCancel(ctx)
			tx, err := db.BeginTx(cctx, nil)
			if err != nil {
				cancel()
				fails++
				errs["BeginTx: "+err.Error()]++
				continue
			}
			cancel()
			_ = tx.Rollback() // sql.ErrTxDone or context.Canceled: the context's end already rolled it back
			tx2, err := db.Begin()
			if err != nil {
				fails++
				errs["Begin: "+err.Error()]++
				continue
			}
			if err := tx2.Rollback(); err != nil {
				fails++
				errs["Rollback: "+err.Error()]++
			}
		}
		o.linef("failures: %d", fails)
		keys := make([]string, 0, len(errs))
		for k := range errs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o.linef("error %q", k) // counts vary from run to run; the kinds do not
		}
	},
}
