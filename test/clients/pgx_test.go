package clients

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgxClient is the Go pgx v5 driver, in-process.
var pgxClient = &client{
	name: "pgx",
	pg:   true,
	need: func() error { return nil },
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		o := &out{}
		f := pgxScenarios[sc.name]
		if f == nil {
			panic("BUG: pgx has no scenario " + sc.name)
		}
		cfg, err := pgx.ParseConfig(tg.pgURL())
		if err != nil {
			o.err("parse config", err)
			return o.String()
		}
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			o.err("connect", err)
			return o.String()
		}
		defer c.Close(context.Background())
		f(ctx, o, c, T)
		return o.String()
	},
	scens: []scenario{
		{name: "basic", setup: pgTypes},
		{name: "errors", setup: pgStd, want: []string{"42601", "23505", "22012"}},
		{name: "tx", setup: pgStd},
		{name: "prepared", setup: pgStd},
		{name: "serializable_read_only", setup: pgStd},
		{name: "plan_change", setup: pgStd, want: []string{"0A000 cached plan must not change result type"}},
		{name: "close_prepared", setup: pgStd, want: []string{"row: int64:0"}, txDiffers: "pg_prepared_statements lists the shared statements baton keeps under its own names"},
		{name: "terminate_self", want: []string{"FATAL 57P01"}},
		{name: "session_state", setup: pgStd, want: []string{"notification: chan_x hello", "row: bool:true"}},
		{name: "pipeline", setup: pgStd, want: []string{"23505", "row: int64:4"}},
		{name: "copy_from", setup: pgStd, want: []string{"copied 5000", "row: int64:5003"}},
		{name: "cursor_with_hold", setup: pgStd, want: []string{"fetch: FETCH 2"}},
		{name: "large_result", want: []string{"rows 100000"}},
	},
}

// pgxQuery prints every row of q, then its command tag or error.
func pgxQuery(ctx context.Context, o *out, c *pgx.Conn, what, q string, args ...any) {
	rows, err := c.Query(ctx, q, args...)
	if err != nil {
		o.err(what, err)
		return
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			o.err(what+" values", err)
			continue
		}
		o.row(vals)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		o.err(what, err)
		return
	}
	o.linef("%s: %s", what, rows.CommandTag())
}

func pgxExec(ctx context.Context, o *out, c *pgx.Conn, what, q string, args ...any) {
	tag, err := c.Exec(ctx, q, args...)
	if err != nil {
		o.err(what, err)
		return
	}
	o.linef("%s: %s", what, tag)
}

var pgxScenarios = map[string]func(context.Context, *out, *pgx.Conn, string){
	// A pgx batch: many Parse/Bind/Execute groups and one Sync, with an error in the middle.
	"pipeline": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		b := &pgx.Batch{}
		b.Queue("SELECT count(*) FROM " + T)
		b.Queue("INSERT INTO "+T+" VALUES ($1, $2)", 4, "four")
		b.Queue("SELECT count(*) FROM " + T)
		b.Queue("INSERT INTO "+T+" VALUES ($1, $2)", 1, "dup")
		b.Queue("SELECT 1")
		br := c.SendBatch(ctx, b)
		for i := range b.Len() {
			rows, err := br.Query()
			if err != nil {
				o.err(fmt.Sprint("batch ", i), err)
				continue
			}
			for rows.Next() {
				v, _ := rows.Values()
				o.row(v)
			}
			rows.Close()
			o.err(fmt.Sprint("batch ", i), rows.Err())
		}
		o.err("batch close", br.Close())
		pgxQuery(ctx, o, c, "after the batch", "SELECT count(*) FROM "+T)
		// The same outside an implicit transaction, in a transaction block of its own.
		b = &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("INSERT INTO "+T+" VALUES ($1, $2)", 5, "five")
		b.Queue("COMMIT")
		o.err("tx batch", c.SendBatch(ctx, b).Close())
		pgxQuery(ctx, o, c, "after the tx batch", "SELECT count(*) FROM "+T)
	},
	// Binary COPY FROM STDIN (pgx CopyFrom), then a read of what it wrote.
	"copy_from": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		rows := make([][]any, 5000)
		for i := range rows {
			rows[i] = []any{int32(i + 4), fmt.Sprint("v", i)}
		}
		n, err := c.CopyFrom(ctx, pgx.Identifier{T}, []string{"id", "v"}, pgx.CopyFromRows(rows))
		o.err("copy from", err)
		o.linef("copied %d", n)
		pgxQuery(ctx, o, c, "count", "SELECT count(*), sum(id) FROM "+T)
		_, err = c.CopyFrom(ctx, pgx.Identifier{T}, []string{"id", "v"}, pgx.CopyFromRows([][]any{{int32(1), "dup"}}))
		o.err("copy a duplicate", err)
		pgxQuery(ctx, o, c, "count after the failed copy", "SELECT count(*) FROM "+T)
	},
	// A cursor WITH HOLD outlives its transaction (baton pins the session to its node).
	"cursor_with_hold": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		pgxExec(ctx, o, c, "begin", "BEGIN")
		pgxExec(ctx, o, c, "declare", "DECLARE cur CURSOR WITH HOLD FOR SELECT id, v FROM "+T+" ORDER BY id")
		pgxExec(ctx, o, c, "commit", "COMMIT")
		pgxQuery(ctx, o, c, "fetch", "FETCH 2 FROM cur", pgx.QueryExecModeSimpleProtocol)
		pgxQuery(ctx, o, c, "fetch", "FETCH 2 FROM cur", pgx.QueryExecModeSimpleProtocol)
		pgxExec(ctx, o, c, "close", "CLOSE cur")
		pgxQuery(ctx, o, c, "fetch closed", "FETCH 1 FROM cur", pgx.QueryExecModeSimpleProtocol)
	},
	// A result of 100,000 rows: printed as a count and checksums.
	"large_result": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		rows, err := c.Query(ctx, "SELECT i, md5(i::text) FROM generate_series(1, $1::int) i", 100000)
		if err != nil {
			o.err("query", err)
			return
		}
		var n, sum int64
		h := fnv.New64a()
		for rows.Next() {
			var i int64
			var m string
			if err := rows.Scan(&i, &m); err != nil {
				o.err("scan", err)
				break
			}
			n++
			sum += i
			h.Write([]byte(m))
		}
		rows.Close()
		o.err("rows", rows.Err())
		o.linef("rows %d sum %d hash %x", n, sum, h.Sum64())
	},
	// Session state a pooled proxy must carry: SET, temp tables, LISTEN/NOTIFY, advisory locks.
	"session_state": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		pgxExec(ctx, o, c, "set tz", "SET TimeZone = 'Asia/Kolkata'")
		pgxExec(ctx, o, c, "set path", "SET search_path = pg_catalog, public")
		pgxQuery(ctx, o, c, "show", "SELECT current_setting('TimeZone'), current_setting('search_path'), '2024-01-01 00:00:00+00'::timestamptz::text")
		pgxQuery(ctx, o, c, "read with state", "SELECT count(*) FROM "+T)
		pgxExec(ctx, o, c, "temp table", "CREATE TEMP TABLE tmp_x AS SELECT * FROM "+T)
		pgxExec(ctx, o, c, "temp insert", "INSERT INTO tmp_x VALUES (9, 'nine')")
		pgxQuery(ctx, o, c, "temp read", "SELECT id, v FROM tmp_x ORDER BY id")
		pgxExec(ctx, o, c, "listen", "LISTEN chan_x")
		pgxExec(ctx, o, c, "notify", "NOTIFY chan_x, 'hello'")
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := c.WaitForNotification(wctx)
		cancel()
		if err != nil {
			o.err("notification", err)
		} else {
			o.linef("notification: %s %s", n.Channel, n.Payload)
		}
		pgxExec(ctx, o, c, "unlisten", "UNLISTEN *")
		pgxQuery(ctx, o, c, "advisory lock", "SELECT pg_try_advisory_lock(4242)")
		pgxQuery(ctx, o, c, "lock held", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
		pgxQuery(ctx, o, c, "advisory unlock", "SELECT pg_advisory_unlock(4242)")
		pgxExec(ctx, o, c, "reset", "RESET ALL")
		pgxQuery(ctx, o, c, "after reset", "SELECT current_setting('search_path')")
	},
	"basic": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		pgxQuery(ctx, o, c, "all rows", "SELECT * FROM "+T+" ORDER BY id")
		pgxQuery(ctx, o, c, "params", "SELECT $1::int + 1, $2::text, $3::bytea, $4::numeric, $5::text IS NULL", 41, "ünï 🐘", []byte{0, 1, 255}, "3.14159", nil)
		pgxQuery(ctx, o, c, "by id", "SELECT s, j, a FROM "+T+" WHERE id = $1", 1)
		pgxQuery(ctx, o, c, "simple protocol", "SELECT * FROM "+T+" WHERE id = $1", pgx.QueryExecModeSimpleProtocol, 2)
		pgxQuery(ctx, o, c, "literals", "SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, 'x'::char(3), '{\"a\":1}'::json, ARRAY['a',NULL,'c'], '2001-02-03'::date, NULL::text")
	},
	"errors": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		pgxExec(ctx, o, c, "syntax", "SELEC 1")
		pgxExec(ctx, o, c, "unique", "INSERT INTO "+T+" VALUES ($1, $2)", 1, "dup")
		pgxQuery(ctx, o, c, "division", "SELECT 1 / $1::int", 0)
		pgxQuery(ctx, o, c, "undefined table", "SELECT * FROM no_such_table_x")
		pgxQuery(ctx, o, c, "after errors", "SELECT count(*) FROM "+T)
	},
	"tx": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		tx, err := c.Begin(ctx)
		o.err("begin", err)
		if err == nil {
			_, err = tx.Exec(ctx, "INSERT INTO "+T+" VALUES (10, 'ten')")
			o.err("insert in tx", err)
			o.err("rollback", tx.Rollback(ctx))
		}
		tx, err = c.Begin(ctx)
		o.err("begin", err)
		if err == nil {
			_, err = tx.Exec(ctx, "INSERT INTO "+T+" VALUES (11, 'eleven')")
			o.err("insert in tx", err)
			_, err = tx.Exec(ctx, "INSERT INTO "+T+" VALUES (1, 'dup')")
			o.err("failing insert", err)
			_, err = tx.Exec(ctx, "SELECT 1")
			o.err("in failed tx", err)
			o.err("commit of failed tx", tx.Commit(ctx))
		}
		tx, err = c.Begin(ctx)
		o.err("begin", err)
		if err == nil {
			_, err = tx.Exec(ctx, "INSERT INTO "+T+" VALUES (12, 'twelve')")
			o.err("insert in tx", err)
			o.err("commit", tx.Commit(ctx))
		}
		pgxQuery(ctx, o, c, "after commit", "SELECT id, v FROM "+T+" ORDER BY id")
	},
	"prepared": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		_, err := c.Prepare(ctx, "byid", "SELECT v FROM "+T+" WHERE id = $1")
		o.err("prepare", err)
		for i := range 15 {
			pgxQuery(ctx, o, c, "named", "byid", i%4)
		}
		for i := range 15 {
			pgxQuery(ctx, o, c, "cached", "SELECT $1::int * 2, v FROM "+T+" WHERE id = $1", i%4)
		}
		o.err("deallocate", c.Deallocate(ctx, "byid"))
		pgxQuery(ctx, o, c, "after deallocate", "byid", 1)
	},
	// issue 9 PG item 4: a serializable read-only transaction runs on a hot standby that
	// rejects serializable isolation.
	"serializable_read_only": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly})
		o.err("begin serializable read only", err)
		if err != nil {
			return
		}
		pgxQuery(ctx, o, c, "count", "SELECT count(*) FROM "+T)
		pgxQuery(ctx, o, c, "isolation", "SHOW transaction_isolation")
		o.err("commit", tx.Commit(ctx))
	},
	// issue 9 PG item 9.
	"plan_change": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		pc := c.PgConn()
		_, err := pc.Prepare(ctx, "s9", "SELECT * FROM "+T+" WHERE id = $1", nil)
		o.err("prepare", err)
		r := pc.ExecPrepared(ctx, "s9", [][]byte{[]byte("1")}, nil, nil).Read()
		o.err("execute", r.Err)
		o.linef("rows %d cols %d", len(r.Rows), len(r.FieldDescriptions))
		pgxExec(ctx, o, c, "alter", "ALTER TABLE "+T+" DROP COLUMN v")
		r = pc.ExecPrepared(ctx, "s9", [][]byte{[]byte("1")}, nil, nil).Read()
		o.err("execute after alter", r.Err)
		pgxQuery(ctx, o, c, "session goes on", "SELECT 1")
	},
	// issue 9 PG item 10: a closed statement is gone from the server too.
	"close_prepared": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		text := "SELECT v FROM " + T + " WHERE id = $1"
		pc := c.PgConn()
		_, err := pc.Prepare(ctx, "s10", text, nil)
		o.err("prepare", err)
		r := pc.ExecPrepared(ctx, "s10", [][]byte{[]byte("2")}, nil, nil).Read()
		o.err("execute", r.Err)
		o.err("close", pc.Deallocate(ctx, "s10"))
		pgxQuery(ctx, o, c, "left prepared", "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", text)
		pgxQuery(ctx, o, c, "by name", "SELECT count(*) FROM pg_prepared_statements WHERE name = 's10'")
	},
	// issue 9 PG item 7.
	"terminate_self": func(ctx context.Context, o *out, c *pgx.Conn, T string) {
		pgxQuery(ctx, o, c, "terminate", "SELECT pg_terminate_backend(pg_backend_pid())")
		err := c.Ping(ctx)
		o.linef("usable after: %v", err == nil)
		o.linef("closed: %v", c.IsClosed() || strings.Contains(errString(err), "closed"))
	},
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
