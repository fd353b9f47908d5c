package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// whereSQL is the row every routing check reads: the port of the server and whether it is a replica.
const whereSQL = "SELECT inet_server_port(), pg_is_in_recovery()"

func TestPgxSimpleProtocol(t *testing.T) {
	ctx := ctxT(t)
	tbl := createTable(t, "simple", "id int PRIMARY KEY, who int")
	c := connect(t, pgx.QueryExecModeSimpleProtocol)

	port, rep := where(t, c, ctx, "")
	wantReplica(t, "a plain read", port, rep)

	// Arguments are interpolated by pgx; the text is still a write.
	var who int
	if err := c.QueryRow(ctx, "INSERT INTO "+tbl+" VALUES ($1, inet_server_port()) RETURNING who", 1).Scan(&who); err != nil {
		t.Fatal(err)
	}
	wantPrimary(t, "INSERT … RETURNING", who, false)

	// A multi-statement query is one unit: the SELECT after the INSERT sees it, on the primary.
	res, err := c.PgConn().Exec(ctx, "INSERT INTO "+tbl+" VALUES (2, inet_server_port()); SELECT count(*), inet_server_port() FROM "+tbl).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || len(res[1].Rows) != 1 {
		t.Fatalf("multi-statement query: got %d results", len(res))
	}
	n, _ := strconv.Atoi(string(res[1].Rows[0][0]))
	mport, _ := strconv.Atoi(string(res[1].Rows[0][1]))
	if n != 2 {
		t.Fatalf("the SELECT of a multi-statement query saw %d rows; want 2 (its own INSERT)", n)
	}
	wantPrimary(t, "a multi-statement query with a write", mport, false)

	// Once replicated, a replica read sees both rows.
	caughtUp(t)
	var cnt int
	if err := c.QueryRow(ctx, "SELECT count(*), inet_server_port(), pg_is_in_recovery() FROM "+tbl).Scan(&cnt, &port, &rep); err != nil {
		t.Fatal(err)
	}
	wantReplica(t, "a read after replication", port, rep)
	if cnt != 2 {
		t.Fatalf("replica read saw %d rows; want 2", cnt)
	}
}

func TestPgxExtendedStatementCache(t *testing.T) {
	ctx := ctxT(t)
	tbl := createTable(t, "cache", "id int PRIMARY KEY, who int")
	c := connect(t, pgx.QueryExecModeCacheStatement)
	sel := "SELECT count(*), inet_server_port(), pg_is_in_recovery() FROM " + tbl + " WHERE id <= $1"
	ins := "INSERT INTO " + tbl + " VALUES ($1, inet_server_port()) RETURNING who"

	for i := 1; i <= 3; i++ {
		var n, port int
		var rep bool
		if err := c.QueryRow(ctx, sel, 100).Scan(&n, &port, &rep); err != nil {
			t.Fatalf("cached read #%d: %v", i, err)
		}
		wantReplica(t, fmt.Sprintf("cached read #%d", i), port, rep)
		var who int
		if err := c.QueryRow(ctx, ins, i).Scan(&who); err != nil {
			t.Fatalf("cached write #%d: %v", i, err)
		}
		wantPrimary(t, fmt.Sprintf("cached write #%d", i), who, false)
	}
	caughtUp(t)
	var n, port int
	var rep bool
	if err := c.QueryRow(ctx, sel, 100).Scan(&n, &port, &rep); err != nil {
		t.Fatal(err)
	}
	wantReplica(t, "cached read after the writes", port, rep)
	if n != 3 {
		t.Fatalf("cached read saw %d rows; want 3", n)
	}

	// The same cached statement inside a transaction runs on the primary (prepared there on
	// demand) and sees the transaction's own write.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var who int
	if err := tx.QueryRow(ctx, ins, 4).Scan(&who); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, sel, 100).Scan(&n, &port, &rep); err != nil {
		t.Fatalf("cached read inside a transaction: %v", err)
	}
	wantPrimary(t, "cached read inside a transaction", port, rep)
	if n != 4 {
		t.Fatalf("cached read inside the transaction saw %d rows; want 4", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, sel, 100).Scan(&n, &port, &rep); err != nil {
		t.Fatal(err)
	}
	wantReplica(t, "cached read after the transaction", port, rep)
}

func TestPgxBatch(t *testing.T) {
	for _, m := range []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol},
		{"cache-statement", pgx.QueryExecModeCacheStatement},
		{"exec", pgx.QueryExecModeExec},
	} {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			tbl := createTable(t, "batch", "id int PRIMARY KEY, who int")
			c := connect(t, m.mode)
			count := "SELECT count(*), inet_server_port() FROM " + tbl
			whoSQL := "SELECT who, inet_server_port(), pg_is_in_recovery() FROM " + tbl + " WHERE id = $1"

			// Mixed batch: sent as one pipeline, it runs on the primary and each read sees
			// the writes queued before it.
			b := &pgx.Batch{}
			b.Queue("INSERT INTO "+tbl+" VALUES ($1, inet_server_port()) RETURNING who", 1)
			b.Queue(count)
			b.Queue("UPDATE "+tbl+" SET who = -1 WHERE id = $1", 1)
			b.Queue(whoSQL, 1)
			br := c.SendBatch(ctx, b)
			var who, n, port int
			if err := br.QueryRow().Scan(&who); err != nil {
				t.Fatalf("batch INSERT: %v", err)
			}
			wantPrimary(t, "the batch INSERT", who, false)
			if err := br.QueryRow().Scan(&n, &port); err != nil {
				t.Fatalf("batch SELECT: %v", err)
			}
			if n != 1 {
				t.Fatalf("the batch SELECT saw %d rows; want 1 (the INSERT before it)", n)
			}
			wantPrimary(t, "a read inside a batch with writes", port, false)
			tag, err := br.Exec()
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("batch UPDATE: %v, %v", tag, err)
			}
			var rep bool
			if err := br.QueryRow().Scan(&who, &port, &rep); err != nil || who != -1 {
				t.Fatalf("batch read after UPDATE: who=%d, %v; want -1", who, err)
			}
			wantPrimary(t, "the last read of a batch with writes", port, rep)
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}

			// A read-only batch runs on one replica.
			caughtUp(t)
			b = &pgx.Batch{}
			b.Queue(whereSQL)
			b.Queue(count)
			br = c.SendBatch(ctx, b)
			var p1 int
			if err := br.QueryRow().Scan(&p1, &rep); err != nil {
				t.Fatal(err)
			}
			wantReplica(t, "a read-only batch", p1, rep)
			if err := br.QueryRow().Scan(&n, &port); err != nil {
				t.Fatal(err)
			}
			if port != p1 || n != 1 {
				t.Fatalf("read-only batch: second read on port %d saw %d rows; want port %d and 1 row", port, n, p1)
			}
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}

			// A statement first prepared in the mixed batch (on the primary) runs alone on a replica.
			if err := c.QueryRow(ctx, whoSQL, 1).Scan(&who, &port, &rep); err != nil {
				t.Fatalf("re-running a batch statement alone: %v", err)
			}
			if who != -1 {
				t.Fatalf("who = %d; want -1", who)
			}
			wantReplica(t, "a read after the batch", port, rep)
		})
	}
}

func TestPgxCopyFrom(t *testing.T) {
	for _, m := range twoModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			// The default is evaluated by the server that runs the COPY.
			tbl := createTable(t, "copyfrom", "id int PRIMARY KEY, name text, who int DEFAULT inet_server_port()")
			c := connect(t, m.mode)
			const rows = 1000
			src := make([][]any, rows)
			for i := range src {
				src[i] = []any{i, "row " + strconv.Itoa(i)}
			}
			n, err := c.CopyFrom(ctx, pgx.Identifier{tbl}, []string{"id", "name"}, pgx.CopyFromRows(src))
			if err != nil {
				t.Fatalf("CopyFrom: %v", err)
			}
			if n != rows {
				t.Fatalf("CopyFrom reported %d rows; want %d", n, rows)
			}
			p := direct(t, pg.Primary)
			if got := queryInt(t, p, "SELECT count(*) FROM "+tbl+" WHERE who = $1", pg.Primary.Port); got != rows {
				t.Fatalf("the primary holds %d rows written by itself; want %d", got, rows)
			}
			// The session goes on normally.
			port, rep := where(t, c, ctx, "")
			wantReplica(t, "a read after COPY FROM", port, rep)
		})
	}
}

func TestPgxCopyTo(t *testing.T) {
	ctx := ctxT(t)
	tbl := createTable(t, "copyto", "id int PRIMARY KEY, name text")
	setup(t, "INSERT INTO "+tbl+" SELECT g, 'n' || g FROM generate_series(1, 3) g")
	c := connect(t, pgx.QueryExecModeCacheStatement)

	var buf bytes.Buffer
	tag, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT id, name, inet_server_port(), pg_is_in_recovery() FROM "+tbl+" ORDER BY id) TO STDOUT")
	if err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if tag.RowsAffected() != 3 || len(lines) != 3 {
		t.Fatalf("COPY TO returned %q (%s); want 3 rows", buf.String(), tag)
	}
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 || f[0] != strconv.Itoa(i+1) || f[1] != "n"+strconv.Itoa(i+1) {
			t.Fatalf("COPY TO row %d = %q", i, l)
		}
		port, _ := strconv.Atoi(f[2])
		wantReplica(t, "COPY … TO STDOUT", port, f[3] == "t")
	}

	// A plain table copy, then the session still works.
	buf.Reset()
	if _, err := c.PgConn().CopyTo(ctx, &buf, "COPY "+tbl+" TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "1\tn1\n2\tn2\n3\tn3\n" {
		t.Fatalf("COPY table TO STDOUT = %q", buf.String())
	}
	// Inside a read-write transaction COPY TO runs on the primary.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	buf.Reset()
	if _, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT inet_server_port()) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(buf.String()) != strconv.Itoa(pg.Primary.Port) {
		t.Fatalf("COPY TO in a transaction ran on port %q; want the primary %d", buf.String(), pg.Primary.Port)
	}
}

func TestListenNotify(t *testing.T) {
	ctx := ctxT(t)
	ch := uniqueName("chan")
	l := connect(t, pgx.QueryExecModeCacheStatement)
	n := connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := l.Exec(ctx, "LISTEN "+ch); err != nil {
		t.Fatal(err)
	}
	wait := func(want string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		got, err := l.WaitForNotification(wctx)
		if err != nil {
			t.Fatalf("waiting for notification %q: %v", want, err)
		}
		if got.Channel != ch || got.Payload != want {
			t.Fatalf("notification = %s/%q; want %s/%q", got.Channel, got.Payload, ch, want)
		}
	}

	// Delivered while the listening session is idle.
	if _, err := n.Exec(ctx, "NOTIFY "+ch+", 'one'"); err != nil {
		t.Fatal(err)
	}
	wait("one")

	// In transaction mode (the shared baton's) LISTEN does not pin: the session's reads still
	// go to replicas (session mode pins: TestListenSessionModePins).
	port, rep := where(t, l, ctx, "")
	wantReplica(t, "a read after LISTEN", port, rep)

	if _, err := n.Exec(ctx, "SELECT pg_notify($1, $2)", ch, "two"); err != nil {
		t.Fatal(err)
	}
	wait("two")
	port, rep = where(t, l, ctx, "")
	wantReplica(t, "a read after the second notification", port, rep)

	// UNLISTEN *: reads still go to replicas.
	if _, err := l.Exec(ctx, "UNLISTEN *"); err != nil {
		t.Fatal(err)
	}
	port, rep = where(t, l, ctx, "")
	wantReplica(t, "a read after UNLISTEN *", port, rep)
}

func TestCancelViaContext(t *testing.T) {
	cases := []struct {
		name string
		mode pgx.QueryExecMode
		tx   bool
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol, false},
		{"cache-statement", pgx.QueryExecModeCacheStatement, false},
		{"in-transaction", pgx.QueryExecModeCacheStatement, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = tc.mode
			// Cancel with a CancelRequest (not by breaking the socket) so the connection survives.
			cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 5 * time.Second}
			}
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if tc.tx {
				if _, err := c.Exec(ctx, "BEGIN"); err != nil {
					t.Fatal(err)
				}
			}
			tag := uniqueName("cancel")
			q := "SELECT pg_sleep(30) /* " + tag + " */"
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			var args []any
			if tc.mode != pgx.QueryExecModeSimpleProtocol {
				q = "SELECT pg_sleep($1) /* " + tag + " */"
				args = []any{30}
			}
			_, err = c.Exec(qctx, q, args...)
			took := time.Since(start)
			if sqlState(err) != "57014" {
				t.Fatalf("cancelled statement returned %v after %v; want SQLSTATE 57014", err, took)
			}
			if took > 3*time.Second {
				t.Fatalf("the cancel took %v", took)
			}
			goneEverywhere(t, "SELECT pg_sleep(", tag, 2*time.Second)
			if tc.tx {
				// As on PostgreSQL the transaction is aborted until ROLLBACK.
				if _, err := c.Exec(ctx, "SELECT 1"); sqlState(err) != "25P02" {
					t.Fatalf("statement in the aborted transaction: %v; want 25P02", err)
				}
				if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
					t.Fatal(err)
				}
			}
			port, rep := where(t, c, ctx, "")
			wantReplica(t, "a read after the cancel", port, rep)
			port, rep = where(t, c, ctx, "/* baton:primary */ ")
			wantPrimary(t, "a hinted read after the cancel", port, rep)
		})
	}
}
