package pgtest

// Session fidelity: each test runs the same client code through baton and directly against the
// primary (as the same application user) and compares what the client observed. Where the
// expected answer is known, it is written down too, so that both sides agreeing on something
// wrong still fails.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// bothWays runs observe against baton and against the primary directly and fails when the
// observations differ. It returns the direct observation.
func bothWays(t *testing.T, observe func(t *testing.T, u string) string) string {
	t.Helper()
	got := observe(t, url)
	want := observe(t, pg.Primary.AppURL())
	if got != want {
		t.Fatalf("through baton:\n%s\ndirect to the primary:\n%s", got, want)
	}
	return want
}

// describeErr renders an error the way a client shows it: severity, SQLSTATE, message.
func describeErr(err error) string {
	if err == nil {
		return "ok"
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity + " " + pe.Code + " " + pe.Message
	}
	return "error (not from the server): " + err.Error()
}

// psqlOut runs psql with args against u (extra environment in env) and returns its combined
// output with the exit status.
func psqlOut(t *testing.T, u string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", append([]string{u, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	status := "exit 0"
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		status = fmt.Sprintf("exit %d", ee.ExitCode())
	} else if err != nil {
		t.Fatalf("psql: %v (is postgresql-client installed?)", err)
	}
	return strings.TrimSpace(string(out)) + "\n" + status
}

// PostgreSQL item 2: DISCARD ALL, then a statement that lands on another node.
func TestFidelityDiscardAllThenRead(t *testing.T) {
	got := bothWays(t, func(t *testing.T, u string) string {
		return psqlOut(t, u, nil, "-c", "discard all", "-c", "select 1", "-c", "set search_path = pg_catalog", "-c", "discard all", "-c", "show search_path")
	})
	if !strings.Contains(got, "\n1\n") || strings.Contains(got, "ERROR") || !strings.HasSuffix(got, "exit 0") {
		t.Fatalf("psql printed %q", got)
	}
}

// PostgreSQL item 3: a list-valued startup parameter keeps its elements.
func TestFidelityListValuedStartupParameter(t *testing.T) {
	got := bothWays(t, func(t *testing.T, u string) string {
		return psqlOut(t, u, []string{"PGOPTIONS=-c search_path=public,pg_catalog"},
			"-c", "show search_path", "-c", "select count(*) > 0 from pg_class where relname = 'pg_class'",
			"-c", "/* baton:replica */ select current_schemas(false)::text")
	})
	if want := "public,pg_catalog\nt\n{public,pg_catalog}\nexit 0"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
}

// PostgreSQL item 6: startup parameters fail, resolve and default as on the server.
func TestFidelityStartupParameters(t *testing.T) {
	t.Run("unknown parameter fails the connection", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string {
			c, err := pgx.Connect(ctxT(t), u+"&options=-c%20doesnotexist%3Dfoo")
			if err == nil {
				c.Close(ctxT(t))
			}
			return describeErr(err)
		})
		if !strings.HasPrefix(got, "FATAL 42704 ") {
			t.Fatalf("got %q; want FATAL 42704", got)
		}
	})
	t.Run("invalid value fails the connection", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string {
			c, err := pgx.Connect(ctxT(t), u+"&options=-c%20work_mem%3Dlots")
			if err == nil {
				c.Close(ctxT(t))
			}
			return describeErr(err)
		})
		if !strings.HasPrefix(got, "FATAL 22023 ") {
			t.Fatalf("got %q; want FATAL 22023", got)
		}
	})
	t.Run("client_encoding direct and in options", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string {
			return psqlOut(t, u, []string{"PGCLIENTENCODING=LATIN1", "PGOPTIONS=-c client_encoding=WIN1252"},
				"-c", "show client_encoding", "-c", "/* baton:replica */ show client_encoding")
		})
		if got != "LATIN1\nLATIN1\nexit 0" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("application_name empty when not sent", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string {
			cfg, err := pgx.ParseConfig(u)
			if err != nil {
				t.Fatal(err)
			}
			delete(cfg.RuntimeParams, "application_name")
			c, err := pgx.ConnectConfig(ctxT(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctxT(t))
			var a, b string
			if err := c.QueryRow(ctxT(t), "show application_name").Scan(&a); err != nil {
				t.Fatal(err)
			}
			if err := c.QueryRow(ctxT(t), "/* baton:primary */ select current_setting('application_name')").Scan(&b); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%q %q %q", a, b, c.PgConn().ParameterStatus("application_name"))
		})
		if got != `"" "" ""` {
			t.Fatalf("got %s", got)
		}
	})
}

// PostgreSQL item 7: a session whose backend is terminated ends with the server's FATAL.
func TestFidelityTerminateOwnBackend(t *testing.T) {
	got := bothWays(t, func(t *testing.T, u string) string {
		c, err := pgx.Connect(ctxT(t), u)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		_, err = c.Exec(ctxT(t), "select pg_terminate_backend(pg_backend_pid())")
		first := describeErr(err)
		_, err = c.Exec(ctxT(t), "select 1")
		return first + "\nthen closed: " + fmt.Sprint(err != nil && c.IsClosed())
	})
	if !strings.HasPrefix(got, "FATAL 57P01 ") || !strings.HasSuffix(got, "then closed: true") {
		t.Fatalf("got %q", got)
	}
}

// PostgreSQL item 7: a backend terminated while the session idles. With state baton cannot
// rebuild (a temporary table) the client's session ends with the server's FATAL, as direct;
// without such state baton reconnects and the client does not notice.
func TestFidelityIdleBackendTerminated(t *testing.T) {
	admin := direct(t, pg.Primary)
	terminate := func(t *testing.T, c *pgx.Conn) {
		var pid int
		if err := c.QueryRow(ctxT(t), "/* baton:primary */ select pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctxT(t), "select pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		var gone bool
		for !gone {
			if err := admin.QueryRow(ctxT(t), "select count(*) = 0 from pg_stat_activity where pid = $1", pid).Scan(&gone); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("pinned", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string {
			c, err := pgx.Connect(ctxT(t), u)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, err := c.Exec(ctxT(t), "create temp table fid_tmp (i int)"); err != nil {
				t.Fatal(err)
			}
			terminate(t, c)
			_, err = c.Exec(ctxT(t), "select count(*) from fid_tmp")
			return describeErr(err)
		})
		if !strings.HasPrefix(got, "FATAL 57P01 ") {
			t.Fatalf("got %q; want FATAL 57P01", got)
		}
	})
	t.Run("unpinned", func(t *testing.T) {
		c := connect(t, pgx.QueryExecModeCacheStatement)
		if _, err := c.Exec(ctxT(t), "set work_mem = '3MB'"); err != nil {
			t.Fatal(err)
		}
		terminate(t, c)
		var wm string
		if err := c.QueryRow(ctxT(t), "/* baton:primary */ show work_mem").Scan(&wm); err != nil {
			t.Fatalf("the statement after the idle backend died: %v", err)
		}
		if wm != "3MB" {
			t.Fatalf("work_mem after the reconnect = %q; want 3MB", wm)
		}
	})
}

// rawDirect logs in straight to the primary as the application user and hijacks the socket.
func rawDirect(t *testing.T) *pgconn.HijackedConn { return rawLogin(t, pg.Primary.AppURL()) }

// PostgreSQL item 8: an ERROR with a class-08 SQLSTATE is an answer, not a lost connection.
func TestFidelityBindFormatMismatch(t *testing.T) {
	for name, hc := range map[string]*pgconn.HijackedConn{"baton": rawLogin(t, url), "direct": rawDirect(t)} {
		codes := roundTrip(t, hc,
			&pgproto3.Parse{Query: "select 1"},
			&pgproto3.Bind{ResultFormatCodes: []int16{0, 0}},
			&pgproto3.Execute{},
			&pgproto3.Sync{})
		if len(codes) != 1 || codes[0] != "08P01" {
			t.Fatalf("%s: error codes %v; want [08P01]", name, codes)
		}
		if codes := roundTrip(t, hc, &pgproto3.Query{String: "select 1"}); len(codes) != 0 {
			t.Fatalf("%s: the next statement failed with %v", name, codes)
		}
	}
}

// exchange sends msgs on hc and reads until the n-th ReadyForQuery. It renders every reply:
// message types, DataRow values, error codes, ReadyForQuery status.
func exchange(t *testing.T, hc *pgconn.HijackedConn, n int, msgs ...pgproto3.FrontendMessage) string {
	t.Helper()
	for _, m := range msgs {
		hc.Frontend.Send(m)
	}
	if err := hc.Frontend.Flush(); err != nil {
		t.Fatal(err)
	}
	hc.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer hc.Conn.SetReadDeadline(time.Time{})
	var out []string
	for n > 0 {
		m, err := hc.Frontend.Receive()
		if err != nil {
			return strings.Join(append(out, "read: "+err.Error()), " ")
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			var vals []string
			for _, v := range m.Values {
				vals = append(vals, string(v))
			}
			out = append(out, "DataRow("+strings.Join(vals, ",")+")")
		case *pgproto3.ErrorResponse:
			out = append(out, "Error("+m.Code+")")
		case *pgproto3.CommandComplete:
			out = append(out, "Complete("+string(m.CommandTag)+")")
		case *pgproto3.ReadyForQuery:
			out = append(out, "Ready("+string(m.TxStatus)+")")
			n--
		case *pgproto3.ParameterStatus, *pgproto3.NoticeResponse:
		default:
			out = append(out, typeName(m))
		}
	}
	return strings.Join(out, " ")
}

// bothRaw runs the same raw exchange through baton and directly and compares the replies.
func bothRaw(t *testing.T, name string, run func(t *testing.T, hc *pgconn.HijackedConn) string) string {
	t.Helper()
	got, want := run(t, rawLogin(t, url)), run(t, rawDirect(t))
	if got != want {
		t.Fatalf("%s\nthrough baton: %s\ndirect:        %s", name, got, want)
	}
	return want
}

// PostgreSQL item 1: a simple Query after extended-protocol messages without a Sync.
func TestFidelityQueryAfterExtendedWithoutSync(t *testing.T) {
	t.Run("pgJDBC autosave", func(t *testing.T) {
		got := bothRaw(t, "BEGIN (extended), SAVEPOINT (Query), select (extended), Sync", func(t *testing.T, hc *pgconn.HijackedConn) string {
			a := exchange(t, hc, 1,
				&pgproto3.Parse{Query: "BEGIN"}, &pgproto3.Bind{}, &pgproto3.Execute{},
				&pgproto3.Query{String: "SAVEPOINT s"})
			b := exchange(t, hc, 1,
				&pgproto3.Parse{Query: "select 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
			c := exchange(t, hc, 1, &pgproto3.Query{String: "ROLLBACK"})
			return a + " | " + b + " | " + c
		})
		want := "ParseComplete BindComplete Complete(BEGIN) Complete(SAVEPOINT) Ready(T) | ParseComplete BindComplete DataRow(1) Complete(SELECT 1) Ready(T) | Complete(ROLLBACK) Ready(I)"
		if got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("extended select then simple select", func(t *testing.T) {
		got := bothRaw(t, "select 'ext' (extended), select 'simple' (Query)", func(t *testing.T, hc *pgconn.HijackedConn) string {
			return exchange(t, hc, 1,
				&pgproto3.Parse{Query: "select 'ext'"}, &pgproto3.Bind{}, &pgproto3.Execute{},
				&pgproto3.Query{String: "select 'simple'"})
		})
		if !strings.Contains(got, "DataRow(ext)") || !strings.Contains(got, "DataRow(simple)") {
			t.Fatalf("got %s; want both rows", got)
		}
	})
	t.Run("failing group: the Query is ignored until Sync", func(t *testing.T) {
		got := bothRaw(t, "select 1/0 (extended), Query, Sync", func(t *testing.T, hc *pgconn.HijackedConn) string {
			a := exchange(t, hc, 1,
				&pgproto3.Parse{Query: "select 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
				&pgproto3.Query{String: "select 'ignored'"}, &pgproto3.Sync{})
			b := exchange(t, hc, 1, &pgproto3.Query{String: "select 'next'"})
			return a + " | " + b
		})
		if strings.Contains(got, "ignored") || !strings.Contains(got, "Error(22012)") {
			t.Fatalf("got %s", got)
		}
	})
}

// PostgreSQL item 10: a closed prepared statement exists on no node the session uses. In
// session pooling the session's connections are its own, so the server lists exactly what the
// client holds; transaction pooling shares statements between sessions (README, pool modes),
// where the client-visible half of this — the closed name is gone, others are not — is
// TestFidelityCloseSharedStatement.
func TestFidelityCloseEverywhere(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) { cl.PoolMode = topology.PoolSession })
	hc := rawLogin(t, b.URL(pg))
	const q = "select 4242 /* fid close */"
	count := func(hint string) string {
		return exchange(t, hc, 1, &pgproto3.Query{String: hint + " select count(*) from pg_prepared_statements where statement = '" + q + "'"})
	}
	// Prepare it, then use it on a replica and on the primary.
	exchange(t, hc, 1, &pgproto3.Parse{Name: "s1", Query: q}, &pgproto3.Sync{})
	exchange(t, hc, 1, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{}) // a read: on a replica
	exchange(t, hc, 1, &pgproto3.Query{String: "BEGIN"})                                               // a transaction: on the primary
	exchange(t, hc, 1, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	exchange(t, hc, 1, &pgproto3.Query{String: "COMMIT"})
	for _, hint := range []string{"/* baton:replica */", "/* baton:primary */"} {
		if got := count(hint); !strings.Contains(got, "DataRow(1)") {
			t.Fatalf("%s before Close: %s; want the statement there", hint, got)
		}
	}
	exchange(t, hc, 1, &pgproto3.Close{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{})
	for _, hint := range []string{"/* baton:replica */", "/* baton:primary */"} {
		if got := count(hint); !strings.Contains(got, "DataRow(0)") {
			t.Fatalf("%s after Close: %s; want 0", hint, got)
		}
	}
}

// Transaction pooling: after a client closes its statement, its name is unknown (26000, as
// directly) on whichever connection the next unit gets, while another session that prepared
// the same text under the same name still executes it.
func TestFidelityCloseSharedStatement(t *testing.T) {
	const q = "select 4343 /* fid close shared */"
	got := bothRaw(t, "Close of a shared statement", func(t *testing.T, hc *pgconn.HijackedConn) string {
		exchange(t, hc, 1, &pgproto3.Parse{Name: "s1", Query: q}, &pgproto3.Sync{})
		first := exchange(t, hc, 1, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		exchange(t, hc, 1, &pgproto3.Close{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{})
		var after []string
		for range 3 { // whichever connection each unit gets
			after = append(after, exchange(t, hc, 1, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{}))
		}
		return first + " | " + strings.Join(after, " | ")
	})
	if !strings.Contains(got, "DataRow") || !strings.Contains(got, "Error(26000)") {
		t.Fatalf("got %s", got)
	}
	// Another session keeps its own statement of the same text.
	hc1, hc2 := rawLogin(t, url), rawLogin(t, url)
	exchange(t, hc1, 1, &pgproto3.Parse{Name: "s1", Query: q}, &pgproto3.Sync{})
	exchange(t, hc2, 1, &pgproto3.Parse{Name: "s1", Query: q}, &pgproto3.Sync{})
	exchange(t, hc1, 1, &pgproto3.Close{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{})
	if r := exchange(t, hc2, 1, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{}); !strings.Contains(r, "DataRow(4343)") {
		t.Fatalf("the other session's statement after one session closed its own: %s", r)
	}
}

// PostgreSQL item 4: serializable work runs where the server accepts it.
func TestFidelitySerializable(t *testing.T) {
	tbl := createTable(t, "fid_ser", "i int")
	for _, mode := range twoModes {
		t.Run(mode.name, func(t *testing.T) {
			got := bothWays(t, func(t *testing.T, u string) string {
				cfg, err := pgx.ParseConfig(u)
				if err != nil {
					t.Fatal(err)
				}
				cfg.DefaultQueryExecMode = mode.mode
				c, err := pgx.ConnectConfig(ctxT(t), cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close(context.Background())
				var out []string
				run := func(q string) {
					var n int64
					err := c.QueryRow(ctxT(t), q).Scan(&n)
					if err != nil && !strings.Contains(err.Error(), "no rows") {
						out = append(out, q+" → "+describeErr(err))
						return
					}
					out = append(out, q+" → ok")
				}
				exec := func(q string) {
					_, err := c.Exec(ctxT(t), q)
					out = append(out, q+" → "+describeErr(err))
				}
				exec("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY")
				run("select count(*) from " + tbl)
				exec("COMMIT")
				exec("BEGIN READ ONLY")
				exec("SET TRANSACTION READ WRITE")
				exec("insert into " + tbl + " values (1)")
				exec("ROLLBACK")
				exec("BEGIN READ ONLY")
				exec("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
				run("select count(*) from " + tbl)
				exec("COMMIT")
				exec("BEGIN READ ONLY")
				run("select count(*) from " + tbl)
				exec("SET TRANSACTION READ WRITE") // too late, on both: 25001
				exec("ROLLBACK")
				exec("SET default_transaction_isolation = serializable")
				run("select count(*) from " + tbl)
				exec("BEGIN READ ONLY")
				run("select count(*) from " + tbl)
				exec("COMMIT")
				exec("RESET default_transaction_isolation")
				run("select count(*) from " + tbl)
				return strings.Join(out, "\n")
			})
			if strings.Count(got, "→ ok") != 21 || !strings.Contains(got, "25001") {
				t.Fatalf("direct answers:\n%s", got)
			}
		})
	}
	t.Run("startup", func(t *testing.T) {
		got := bothWays(t, func(t *testing.T, u string) string {
			return psqlOut(t, u, []string{"PGOPTIONS=-c default_transaction_isolation=serializable"},
				"-c", "select count(*) from "+tbl, "-c", "show transaction_isolation")
		})
		if got != "0\nserializable\nexit 0" {
			t.Fatalf("got %q", got)
		}
	})
}

// PostgreSQL item 9: a prepared statement whose result type changed fails as on the server,
// even when baton prepares it anew on another node.
func TestFidelityPreparedShapeChanged(t *testing.T) {
	got := bothWays(t, func(t *testing.T, u string) string {
		tbl := createTable(t, "fid_shape", "a int, b int")
		setup(t, "insert into "+tbl+" values (1, 2)")
		cfg, err := pgx.ParseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
		c, err := pgx.ConnectConfig(ctxT(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		q := "select * from " + tbl
		rows := func() string {
			r, err := c.Query(ctxT(t), q)
			if err != nil {
				return describeErr(err)
			}
			vals, err := pgx.CollectRows(r, func(row pgx.CollectableRow) ([]any, error) { return row.Values() })
			if err != nil {
				return describeErr(err)
			}
			return fmt.Sprint(vals)
		}
		var out []string
		out = append(out, rows()) // prepared and described (through baton: on a replica)
		setup(t, "alter table "+tbl+" drop column b")
		if _, err := c.Exec(ctxT(t), "begin"); err != nil { // a transaction: on the primary
			t.Fatal(err)
		}
		out = append(out, rows())
		_, err = c.Exec(ctxT(t), "select 1")
		out = append(out, describeErr(err))
		_, err = c.Exec(ctxT(t), "rollback")
		out = append(out, describeErr(err), rows())
		return strings.Join(out, "\n")
	})
	want := "[[1 2]]\nERROR 0A000 cached plan must not change result type\nERROR 25P02 current transaction is aborted, commands ignored until end of transaction block\nok\n[[1]]"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
