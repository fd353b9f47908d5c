package mytest

// go-sql-driver features through baton: multiple result sets, stored procedures, session state
// that pins a session to the primary, transactions, databases, DSN options.

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// primaryRoot opens a root pool directly on the primary (bypassing baton).
func primaryRoot(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", my.Primary.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// scanPorts reads every row of the current result set as (label, port).
func scanPorts(t *testing.T, rows *sql.Rows) (labels []string, ports []int) {
	t.Helper()
	for rows.Next() {
		var l string
		var p int
		if err := rows.Scan(&l, &p); err != nil {
			t.Fatal(err)
		}
		labels, ports = append(labels, l), append(ports, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return labels, ports
}

func TestMultiStatementResultSets(t *testing.T) {
	ctx := ctxT(t)
	db := open(t, "multiStatements=true")
	t.Run("reads", func(t *testing.T) {
		rows, err := db.QueryContext(ctx, "SELECT 'a', @@port; SELECT 'b', @@port UNION ALL SELECT 'c', @@port")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		l1, p1 := scanPorts(t, rows)
		if !rows.NextResultSet() {
			t.Fatalf("no second result set: %v", rows.Err())
		}
		l2, p2 := scanPorts(t, rows)
		if rows.NextResultSet() {
			t.Fatal("a third result set")
		}
		if fmt.Sprint(l1, l2) != "[a] [b c]" {
			t.Fatalf("result sets %v %v", l1, l2)
		}
		for _, p := range append(p1, p2...) {
			wantReplica(t, "a multi-statement of reads", p)
		}
	})
	t.Run("write-and-read", func(t *testing.T) {
		tbl := unique("multi")
		mustExec(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, who INT)")
		rows, err := db.QueryContext(ctx, "INSERT INTO "+tbl+" VALUES (1, @@port); SELECT 'r', @@port FROM "+tbl)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		// The INSERT's OK is the first result; the driver skips it to the SELECT.
		_, ports := scanPorts(t, rows)
		for rows.NextResultSet() {
			_, more := scanPorts(t, rows)
			ports = append(ports, more...)
		}
		if len(ports) != 1 {
			t.Fatalf("the SELECT after the INSERT returned %d rows; want the row just written", len(ports))
		}
		wantPrimary(t, "a multi-statement with a write", ports[0])
	})
	wantReplica(t, "a read after the multi-statements", where(t, db, ctx, ""))
}

func TestStoredProcedureResultSets(t *testing.T) {
	ctx := ctxT(t)
	proc := unique("proc")
	mustExec(t, open(t, ""), "CREATE PROCEDURE "+proc+"(IN x INT) BEGIN SELECT CAST(x * 2 AS CHAR), @@port; SELECT 'second', @@port; END")
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			c := conn(t, m.params)
			for _, call := range []struct {
				q    string
				args []any
			}{{"CALL " + proc + "(21)", nil}, {"CALL " + proc + "(?)", []any{21}}} {
				rows, err := c.QueryContext(ctx, call.q, call.args...)
				if err != nil {
					t.Fatalf("%s: %v", call.q, err)
				}
				l1, p1 := scanPorts(t, rows)
				if !rows.NextResultSet() {
					t.Fatalf("%s: no second result set: %v", call.q, rows.Err())
				}
				l2, p2 := scanPorts(t, rows)
				if rows.NextResultSet() {
					t.Fatalf("%s: a third result set", call.q)
				}
				rows.Close()
				if fmt.Sprint(l1, l2) != "[42] [second]" {
					t.Fatalf("%s: result sets %v %v", call.q, l1, l2)
				}
				wantPrimary(t, call.q, p1[0])
				wantPrimary(t, call.q+" (second result set)", p2[0])
				// The session is in sync after the procedure's final OK.
				var n int
				if err := c.QueryRowContext(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
					t.Fatalf("after %s: %d, %v", call.q, n, err)
				}
			}
		})
	}
}

func TestUserVariablePinsSession(t *testing.T) {
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := conn(t, m.params)
			wantReplica(t, "a read before SET @v", where(t, c, ctx, ""))
			mustExec(t, c, "SET @v = 5")
			var v sql.NullInt64
			var port int
			if err := c.QueryRowContext(ctx, "SELECT @v, @@port").Scan(&v, &port); err != nil {
				t.Fatal(err)
			}
			if !v.Valid || v.Int64 != 5 {
				t.Fatalf("SELECT @v = %v; want 5", v)
			}
			wantPrimary(t, "a read of a user variable", port)
			wantPrimary(t, "any read of a session with user variables", where(t, c, ctx, ""))
		})
	}
}

func TestGetLockPinsSession(t *testing.T) {
	ctx := ctxT(t)
	c := conn(t, "")
	name := unique("lock")
	var got sql.NullInt64
	if err := c.QueryRowContext(ctx, "SELECT GET_LOCK(?, 5)", name).Scan(&got); err != nil || got.Int64 != 1 {
		t.Fatalf("GET_LOCK = %v, %v", got, err)
	}
	var mine sql.NullBool
	var port int
	if err := c.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID(), @@port", name).Scan(&mine, &port); err != nil {
		t.Fatal(err)
	}
	if !mine.Valid || !mine.Bool {
		t.Fatalf("IS_USED_LOCK on the same session: %v; want the session's own connection", mine)
	}
	wantPrimary(t, "IS_USED_LOCK after GET_LOCK", port)
	var held int
	if err := primaryRoot(t).QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) IS NOT NULL", name).Scan(&held); err != nil || held != 1 {
		t.Fatalf("the lock is not held on the primary: %d, %v", held, err)
	}
	if err := c.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", name).Scan(&got); err != nil || got.Int64 != 1 {
		t.Fatalf("RELEASE_LOCK = %v, %v; want 1 (released by the holder)", got, err)
	}
}

func TestLockTables(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("lockt")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	waitReplicated(t)
	c := conn(t, "")
	mustExec(t, c, "LOCK TABLES "+tbl+" WRITE")
	mustExec(t, c, "INSERT INTO "+tbl+" VALUES (1)")
	var n, port int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*), @@port FROM "+tbl).Scan(&n, &port); err != nil {
		t.Fatalf("reading the locked table: %v", err)
	}
	if n != 1 {
		t.Fatalf("count %d under LOCK TABLES", n)
	}
	wantPrimary(t, "a read under LOCK TABLES", port)
	wantPrimary(t, "any read under LOCK TABLES", where(t, c, ctx, ""))
	// Like on the server: a table not locked cannot be used.
	var me *mysql.MySQLError
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tbl+" AS other").Scan(&n); !errors.As(err, &me) || me.Number != 1100 {
		t.Fatalf("a table not locked under LOCK TABLES: %v; want error 1100", err)
	}
	mustExec(t, c, "UNLOCK TABLES")
	wantReplica(t, "a read after UNLOCK TABLES", where(t, c, ctx, ""))
}

func TestFoundRows(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("found")
	db := open(t, "")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	mustExec(t, db, "INSERT INTO "+tbl+" VALUES (1),(2),(3),(4),(5),(6),(7)")
	waitReplicated(t)
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			c := conn(t, m.params)
			for _, limit := range []int{2, 5} {
				rows, err := c.QueryContext(ctx, "SELECT SQL_CALC_FOUND_ROWS id FROM "+tbl+" WHERE id > ? ORDER BY id LIMIT "+strconv.Itoa(limit), limit-2)
				if err != nil {
					t.Fatal(err)
				}
				got := 0
				for rows.Next() {
					got++
				}
				rows.Close()
				var found int
				if err := c.QueryRowContext(ctx, "SELECT FOUND_ROWS()").Scan(&found); err != nil {
					t.Fatal(err)
				}
				if want := 7 - (limit - 2); got != min(limit, want) || found != want {
					t.Fatalf("LIMIT %d: %d rows, FOUND_ROWS() = %d; want %d", limit, got, found, want)
				}
			}
		})
	}
}

func TestLastInsertID(t *testing.T) {
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			tbl := unique("lid")
			mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT = 1000")
			c := conn(t, m.params)
			res, err := c.ExecContext(ctx, "INSERT INTO "+tbl+" (v) VALUES (?), (?)", 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			id, err := res.LastInsertId()
			if err != nil || id != 1000 {
				t.Fatalf("LastInsertId = %d, %v; want 1000", id, err)
			}
			where(t, c, ctx, "") // a read in between, wherever it runs
			var lid int64
			if err := c.QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&lid); err != nil {
				t.Fatal(err)
			}
			if lid != 1000 {
				t.Fatalf("SELECT LAST_INSERT_ID() = %d; want 1000 (the session's last insert)", lid)
			}
		})
	}
}

func TestWriteInReadOnlyTransaction(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("rotx")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	waitReplicated(t)
	// What a direct connection to the primary says.
	direct, err := sql.Open("mysql", my.Primary.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	dc, err := direct.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	mustExec(t, dc, "START TRANSACTION READ ONLY")
	_, derr := dc.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (1)")
	mustExec(t, dc, "ROLLBACK")
	var want *mysql.MySQLError
	if !errors.As(derr, &want) || want.Number != 1792 {
		t.Fatalf("direct: %v; expected error 1792", derr)
	}
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			c := conn(t, m.params)
			mustExec(t, c, "START TRANSACTION READ ONLY")
			first := where(t, c, ctx, "")
			_, err := c.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (?)", 1)
			var got *mysql.MySQLError
			if !errors.As(err, &got) || got.Number != want.Number || got.SQLState != want.SQLState || got.Message != want.Message {
				t.Fatalf("a write in START TRANSACTION READ ONLY: %v; want %v as directly", err, want)
			}
			if p := where(t, c, ctx, ""); p != first {
				t.Fatalf("the read-only transaction moved from %d to %d after the error", first, p)
			}
			mustExec(t, c, "ROLLBACK")
			var n int
			if err := c.QueryRowContext(ctx, "/* baton:primary */ SELECT COUNT(*) FROM "+tbl).Scan(&n); err != nil || n != 0 {
				t.Fatalf("rows after the refused write: %d, %v", n, err)
			}
		})
	}
}

func TestAutocommitOff(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("ac")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, who INT)")
	waitReplicated(t)
	root := primaryRoot(t)
	count := func() (n int) {
		t.Helper()
		if err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c := conn(t, "")
	mustExec(t, c, "SET autocommit = 0")
	wantPrimary(t, "a read with autocommit=0", where(t, c, ctx, ""))
	mustExec(t, c, "INSERT INTO "+tbl+" VALUES (1, @@port)")
	var n, port int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*), @@port FROM "+tbl).Scan(&n, &port); err != nil || n != 1 {
		t.Fatalf("the session does not see its uncommitted row: %d, %v", n, err)
	}
	wantPrimary(t, "a read of the open transaction", port)
	if n := count(); n != 0 {
		t.Fatalf("another session sees %d rows before COMMIT", n)
	}
	mustExec(t, c, "COMMIT")
	if n := count(); n != 1 {
		t.Fatalf("after COMMIT another session sees %d rows", n)
	}
	// Still autocommit=0: the next statement opens a new transaction on the primary.
	wantPrimary(t, "a read after COMMIT with autocommit=0", where(t, c, ctx, ""))
	mustExec(t, c, "INSERT INTO "+tbl+" VALUES (2, @@port)")
	mustExec(t, c, "ROLLBACK")
	if n := count(); n != 1 {
		t.Fatalf("after ROLLBACK another session sees %d rows; want 1", n)
	}
	var who int
	if err := root.QueryRowContext(ctx, "SELECT who FROM "+tbl+" WHERE id = 1").Scan(&who); err != nil {
		t.Fatal(err)
	}
	wantPrimary(t, "the write with autocommit=0", who)
	mustExec(t, c, "SET autocommit = 1")
	wantReplica(t, "a read after SET autocommit = 1", where(t, c, ctx, ""))
}

// otherDB creates a database besides the app database, readable by the app user, with one
// table t (v = 'in-other'), replicated everywhere.
func otherDB(t *testing.T) string {
	t.Helper()
	ctx := ctxT(t)
	db := unique("otherdb")
	root := primaryRoot(t)
	for _, q := range []string{
		"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".t (v VARCHAR(20))",
		"INSERT INTO " + db + ".t VALUES ('in-other')",
		"GRANT ALL ON " + db + ".* TO '" + my.Opts.AppUser + "'@'%'",
		"GRANT ALL ON " + db + ".* TO '" + my.Opts.AppUser + "'@'127.0.0.1'",
		"GRANT ALL ON " + db + ".* TO '" + my.Opts.AppUser + "'@'localhost'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitReplicated(t)
	return db
}

// readOther reads otherDB's table without naming the database.
func readOther(t *testing.T, q queryer, what, wantDB string) {
	t.Helper()
	var v, db string
	var port int
	if err := q.QueryRowContext(ctxT(t), "SELECT v, DATABASE(), @@port FROM t").Scan(&v, &db, &port); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if v != "in-other" || db != wantDB {
		t.Fatalf("%s: v=%q DATABASE()=%q; want in-other, %s", what, v, db, wantDB)
	}
	wantReplica(t, what, port)
}

func TestOtherDatabase(t *testing.T) {
	other := otherDB(t)
	addr := baton.Inst.Clusters()[0].Addr().String()
	t.Run("dsn", func(t *testing.T) {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = my.Opts.AppUser, my.Opts.AppPassword, "tcp", addr, other
		db := sql.OpenDB(mustConnector(t, cfg))
		defer db.Close()
		readOther(t, db, "a read with the database in the DSN", other)
	})
	t.Run("use", func(t *testing.T) {
		c := conn(t, "")
		mustExec(t, c, "USE "+other)
		readOther(t, c, "a read after USE", other)
		mustExec(t, c, "USE "+my.Opts.AppDB)
		var db string
		var port int
		if err := c.QueryRowContext(ctxT(t), "SELECT DATABASE(), @@port").Scan(&db, &port); err != nil || db != my.Opts.AppDB {
			t.Fatalf("after USE back: %q, %v", db, err)
		}
		wantReplica(t, "a read after USE back", port)
	})
	t.Run("com-init-db", func(t *testing.T) {
		w := wireLogin(t, addr)
		w.mustWrite(0, append([]byte{wireComInitDB}, other...))
		if p, seq := w.mustRead("COM_INIT_DB"); len(p) == 0 || p[0] != 0 || seq != 1 {
			t.Fatalf("COM_INIT_DB answered %q (seq %d, %v)", p, seq, decodeErr(p))
		}
		rows := w.mustQuery("SELECT v, DATABASE(), @@port FROM t")
		if len(rows) != 1 || rows[0][0] != "in-other" || rows[0][1] != other {
			t.Fatalf("after COM_INIT_DB: %q", rows)
		}
		port, _ := strconv.Atoi(rows[0][2])
		wantReplica(t, "a read after COM_INIT_DB", port)
		// An unknown database is refused as the server refuses it, and the session keeps its
		// database.
		direct := wireLogin(t, my.Primary.Addr())
		direct.mustWrite(0, append([]byte{wireComInitDB}, "no_such_db_xyz"...))
		p, _ := direct.mustRead("COM_INIT_DB of an unknown database, directly")
		want := decodeErr(p)
		if want == nil {
			t.Fatalf("directly, COM_INIT_DB of an unknown database answered %q", p)
		}
		w.mustWrite(0, append([]byte{wireComInitDB}, "no_such_db_xyz"...))
		if e := w.expectErr("COM_INIT_DB of an unknown database", 1, want.Code); *e != *want {
			t.Fatalf("through baton %v; directly %v", e, want)
		}
		if rows := w.mustQuery("SELECT DATABASE()"); rows[0][0] != other {
			t.Fatalf("after a failed COM_INIT_DB DATABASE() = %q", rows[0][0])
		}
	})
}

func mustConnector(t *testing.T, cfg *mysql.Config) driver.Connector {
	t.Helper()
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestColumnsWithAliasAndParseTime(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("alias")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, ts DATETIME(6), d DATE)")
	mustExec(t, open(t, ""), "INSERT INTO "+tbl+" VALUES (1, '2024-02-29 13:14:15.123456', '1999-12-31')")
	waitReplicated(t)
	wantTS := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	wantD := time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			db := open(t, "columnsWithAlias=true&parseTime=true&"+m.params)
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{"SELECT a.id, a.ts, a.d, @@port FROM " + tbl + " AS a", nil},
				{"SELECT a.id, a.ts, a.d, @@port FROM " + tbl + " AS a WHERE a.id = ?", []any{1}},
			} {
				rows, err := db.QueryContext(ctx, q.sql, q.args...)
				if err != nil {
					t.Fatal(err)
				}
				cols, _ := rows.Columns()
				if fmt.Sprint(cols) != "[a.id a.ts a.d @@port]" {
					t.Fatalf("%s: columns %q", q.sql, cols)
				}
				if !rows.Next() {
					t.Fatalf("%s: no row: %v", q.sql, rows.Err())
				}
				var id, port int
				var ts, d time.Time
				if err := rows.Scan(&id, &ts, &d, &port); err != nil {
					t.Fatalf("%s: %v", q.sql, err)
				}
				rows.Close()
				if !ts.Equal(wantTS) || !d.Equal(wantD) {
					t.Fatalf("%s: ts=%v d=%v", q.sql, ts, d)
				}
				wantReplica(t, q.sql, port)
			}
		})
	}
}

// escapeCases are strings interpolateParams must escape.
var escapeCases = []string{
	`O'Reilly`, `back\slash`, `trailing\`, `"double"`, "nul\x00byte", "ctrl-z\x1a", "line\nbreak\r\ttab",
	"ünïcödé 🙂", `\'; DROP TABLE x; -- `, `''`, `\\'`,
}

// anyNode lists the escapeCases whose escaped literal reads as a write when backslashes are
// not escapes (NO_BACKSLASH_ESCAPES): the classifier does not know the session's sql_mode and
// takes the most cautious reading (router/myclass.go), so these reads may go to the primary.
var anyNode = map[string]bool{`\'; DROP TABLE x; -- `: true}

func TestInterpolateParamsEscaping(t *testing.T) {
	tbl := unique("esc")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, s VARCHAR(200)) CHARACTER SET utf8mb4")
	roundTrip := func(t *testing.T, c *sql.Conn, base int) {
		t.Helper()
		ctx := ctxT(t)
		for i, s := range escapeCases {
			mustExec(t, c, "INSERT INTO "+tbl+" VALUES (?, ?)", base+i, s)
		}
		waitReplicated(t)
		for i, s := range escapeCases {
			var got string
			var port int
			if err := c.QueryRowContext(ctx, "SELECT s, @@port FROM "+tbl+" WHERE id = ? AND s = ?", base+i, s).Scan(&got, &port); err != nil {
				t.Fatalf("reading back %q: %v", s, err)
			}
			if got != s {
				t.Fatalf("stored %q, read %q", s, got)
			}
			if !isReplicaPort(port) && !anyNode[s] {
				t.Errorf("an interpolated read of %q ran on %d; want a replica (primary %d)", s, port, my.Primary.Port)
			}
		}
	}
	t.Run("backslash-escapes", func(t *testing.T) {
		roundTrip(t, conn(t, "interpolateParams=true"), 0)
	})
	t.Run("no-backslash-escapes", func(t *testing.T) {
		// The driver escapes by the server status flag NO_BACKSLASH_ESCAPES, which must reach
		// it through baton, and stay set after commands baton answers itself (COM_PING).
		c := conn(t, "interpolateParams=true")
		mustExec(t, c, "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')")
		roundTrip(t, c, 100)
		if err := c.PingContext(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, 200)
	})
}
