package clients

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// goMySQLClient is go-sql-driver/mysql through database/sql, in-process.
var goMySQLClient = &client{
	name: "go-sql-driver",
	need: func() error { return nil },
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		o := &out{}
		f := goMySQLScenarios[sc.name]
		if f == nil {
			panic("BUG: go-sql-driver has no scenario " + sc.name)
		}
		params := ""
		if sc.name == "multi_statements" {
			params = "multiStatements=true"
		}
		cfg, err := mysql.ParseDSN(tg.myDSN(params))
		if err != nil {
			o.err("dsn", err)
			return o.String()
		}
		cfg.Logger = &mysql.NopLogger{}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			o.err("connector", err)
			return o.String()
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		if sc.name != "kill_query" {
			// One connection, one session: a read after the session's own write is what
			// read_your_writes guarantees; across two pooled connections it is not.
			db.SetMaxOpenConns(1)
		}
		f(ctx, o, db, T)
		return o.String()
	},
	scens: []scenario{
		{name: "basic", setup: myTypes},
		{name: "errors", setup: myStd, want: []string{"1064 42000", "1062 23000", "1365 22012"}},
		{name: "tx", setup: myStd},
		{name: "prepared", setup: myStd},
		{name: "warnings", setup: myStd, want: []string{"1365"}},
		{name: "row_count", setup: myStd, want: []string{"row: \"2\""}},
		{name: "kill_query", setup: myStd, want: []string{"interrupted: true"}},
		{name: "session_state", setup: myStd + "\nDROP TABLE IF EXISTS {T}_ai;\nCREATE TABLE {T}_ai (id int AUTO_INCREMENT PRIMARY KEY, v int);", want: []string{"row: \"5\"|\"+05:00\"", "row: \"3\"\nfound_rows"}},
		{name: "multi_statements", setup: myStd, want: []string{"result set 2"}},
		{name: "big_packet", setup: "DROP TABLE IF EXISTS {T};\nCREATE TABLE {T} (id int PRIMARY KEY, b longblob);", want: []string{"length 17825792"}},
	},
}

// myQuery prints every row of q (as text or NULL), then the row count, or the error.
func myQuery(ctx context.Context, o *out, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, what, query string, args ...any) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		o.err(what, err)
		return
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			o.err(what+" scan", err)
			continue
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				s[i] = "NULL"
			} else {
				s[i] = fmt.Sprintf("%q", v)
			}
		}
		o.linef("row: %s", strings.Join(s, "|"))
		n++
	}
	if err := rows.Err(); err != nil {
		o.err(what, err)
		return
	}
	o.linef("%s: %d rows", what, n)
}

func myExec(ctx context.Context, o *out, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, what, query string, args ...any) {
	r, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		o.err(what, err)
		return
	}
	n, _ := r.RowsAffected()
	o.linef("%s: %d affected", what, n)
}

var goMySQLScenarios = map[string]func(context.Context, *out, *sql.DB, string){
	// A 17 MiB value each way: MySQL packets over 16 MiB are split, and joined again.
	"big_packet": func(ctx context.Context, o *out, db *sql.DB, T string) {
		big := make([]byte, 17<<20)
		for i := range big {
			big[i] = byte(i * 7)
		}
		myExec(ctx, o, db, "insert (binary protocol)", "INSERT INTO "+T+" VALUES (?, ?)", 1, big)
		myExec(ctx, o, db, "insert (text protocol)", "INSERT INTO "+T+" VALUES (2, REPEAT('x', 17825792))")
		for _, id := range []int{1, 2} {
			var got []byte
			err := db.QueryRowContext(ctx, "SELECT b FROM "+T+" WHERE id = ?", id).Scan(&got)
			o.err(fmt.Sprint("read ", id), err)
			o.linef("length %d sum %x", len(got), sha256.Sum256(got))
		}
		myQuery(ctx, o, db, "server side", "SELECT id, LENGTH(b), MD5(b) FROM "+T+" ORDER BY id")
	},
	// Session state a pooled proxy must carry: user variables, SET SESSION, temporary tables,
	// GET_LOCK, LAST_INSERT_ID, FOUND_ROWS.
	"session_state": func(ctx context.Context, o *out, db *sql.DB, T string) {
		c, err := db.Conn(ctx)
		if err != nil {
			o.err("conn", err)
			return
		}
		defer c.Close()
		myExec(ctx, o, c, "set var", "SET @x = 5")
		myExec(ctx, o, c, "set tz", "SET time_zone = '+05:00'")
		myQuery(ctx, o, c, "read vars", "SELECT @x, @@time_zone")
		myExec(ctx, o, c, "sql_mode", "SET SESSION sql_mode = 'ANSI_QUOTES'")
		myQuery(ctx, o, c, "ansi quotes", `SELECT "v" FROM `+T+` WHERE id = 1`)
		myExec(ctx, o, c, "temp table", "CREATE TEMPORARY TABLE tmp_x AS SELECT * FROM "+T)
		myExec(ctx, o, c, "temp insert", "INSERT INTO tmp_x VALUES (9, 'nine')")
		myQuery(ctx, o, c, "temp read", "SELECT id, v FROM tmp_x ORDER BY id")
		myQuery(ctx, o, c, "get_lock", "SELECT GET_LOCK('lock_x', 1)")
		myQuery(ctx, o, c, "is_used_lock", "SELECT IS_USED_LOCK('lock_x') = CONNECTION_ID()")
		myQuery(ctx, o, c, "release_lock", "SELECT RELEASE_LOCK('lock_x')")
		myExec(ctx, o, c, "auto_increment", "INSERT INTO "+T+"_ai (v) VALUES (1), (2)")
		myQuery(ctx, o, c, "last_insert_id", "SELECT LAST_INSERT_ID()")
		myQuery(ctx, o, c, "calc rows", "SELECT SQL_CALC_FOUND_ROWS id FROM "+T+" ORDER BY id LIMIT 1")
		myQuery(ctx, o, c, "found_rows", "SELECT FOUND_ROWS()")
	},
	// Several statements in one COM_QUERY (the DSN has multiStatements=true): every result set,
	// and an error in the middle.
	"multi_statements": func(ctx context.Context, o *out, db *sql.DB, T string) {
		c, err := db.Conn(ctx)
		if err != nil {
			o.err("conn", err)
			return
		}
		defer c.Close()
		for _, q := range []string{
			"SELECT 1 AS a; SELECT v FROM " + T + " ORDER BY id; INSERT INTO " + T + " VALUES (7, 'x'); SELECT count(*) FROM " + T,
			"SELECT 1; SELEC 2; SELECT 3",
			"SET @m = 3; SELECT @m",
		} {
			rows, err := c.QueryContext(ctx, q)
			if err != nil {
				o.err("multi", err)
				continue
			}
			for set := 1; ; set++ {
				o.linef("result set %d", set)
				for rows.Next() {
					var v sql.RawBytes
					if err := rows.Scan(&v); err != nil {
						o.err("scan", err)
						continue
					}
					o.linef("row: %q", v)
				}
				if !rows.NextResultSet() {
					break
				}
			}
			o.err("multi end", rows.Err())
			rows.Close()
		}
		myQuery(ctx, o, c, "after", "SELECT count(*) FROM "+T)
	},
	"basic": func(ctx context.Context, o *out, db *sql.DB, T string) {
		myQuery(ctx, o, db, "all rows (text)", "SELECT * FROM "+T+" ORDER BY id")
		myQuery(ctx, o, db, "by id (binary)", "SELECT * FROM "+T+" WHERE id = ?", 1)
		myQuery(ctx, o, db, "params", "SELECT ? + 1, ?, ?, ? IS NULL", 41, "ünï 🐘", []byte{0, 1, 255}, nil)
		myQuery(ctx, o, db, "literals", "SELECT 1, 2.50, 'x', NULL, CAST('2001-02-03' AS DATE), JSON_OBJECT('a', 1)")
	},
	"errors": func(ctx context.Context, o *out, db *sql.DB, T string) {
		c, err := db.Conn(ctx)
		if err != nil {
			o.err("conn", err)
			return
		}
		defer c.Close()
		myExec(ctx, o, c, "syntax", "SELEC 1")
		myExec(ctx, o, c, "unique", "INSERT INTO "+T+" VALUES (?, ?)", 1, "dup")
		myExec(ctx, o, c, "strict division", "INSERT INTO "+T+" VALUES (1/0, 'x')")
		myQuery(ctx, o, c, "undefined table", "SELECT * FROM no_such_table_x")
		myQuery(ctx, o, c, "after errors", "SELECT count(*) FROM "+T)
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
			myQuery(ctx, o, tx, "read in tx", "SELECT id FROM "+T+" ORDER BY id")
			o.err("commit", tx.Commit())
		}
		tx, err = db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		o.err("begin read only", err)
		if err == nil {
			myQuery(ctx, o, tx, "read-only tx", "SELECT count(*) FROM "+T)
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
		st, err := c.PrepareContext(ctx, "SELECT v FROM "+T+" WHERE id = ?")
		o.err("prepare", err)
		if err != nil {
			return
		}
		for i := range 15 {
			myQuery(ctx, o, stmtQ{st}, "execute", "", i%4)
		}
		o.err("close", st.Close())
		ins, err := c.PrepareContext(ctx, "INSERT INTO "+T+" VALUES (?, ?)")
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
	// issue 9 MySQL item 4.
	"warnings": func(ctx context.Context, o *out, db *sql.DB, T string) {
		c, err := db.Conn(ctx)
		if err != nil {
			o.err("conn", err)
			return
		}
		defer c.Close()
		myQuery(ctx, o, c, "warns", "SELECT CAST('abc' AS INT) + 1/0 FROM "+T+" WHERE id = 1")
		myQuery(ctx, o, c, "show warnings", "SHOW WARNINGS")
		myQuery(ctx, o, c, "select warns", "SELECT 1/0")
		myQuery(ctx, o, c, "warning_count", "SELECT @@warning_count")
		myQuery(ctx, o, c, "show count", "SHOW COUNT(*) WARNINGS")
	},
	// issue 9 MySQL item 6.
	"row_count": func(ctx context.Context, o *out, db *sql.DB, T string) {
		c, err := db.Conn(ctx)
		if err != nil {
			o.err("conn", err)
			return
		}
		defer c.Close()
		myExec(ctx, o, c, "insert", "INSERT INTO "+T+" VALUES (6, 'six'), (7, 'seven')")
		myQuery(ctx, o, c, "row_count", "SELECT ROW_COUNT()")
		myExec(ctx, o, c, "update", "UPDATE "+T+" SET v = 'x' WHERE id > 5")
		myQuery(ctx, o, c, "row_count", "SELECT ROW_COUNT()")
	},
	// issue 9 MySQL item 3: KILL QUERY <CONNECTION_ID()> from another connection.
	"kill_query": func(ctx context.Context, o *out, db *sql.DB, T string) {
		a, err := db.Conn(ctx)
		if err != nil {
			o.err("conn a", err)
			return
		}
		defer a.Close()
		b, err := db.Conn(ctx)
		if err != nil {
			o.err("conn b", err)
			return
		}
		defer b.Close()
		var id int64
		if err := a.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			o.err("connection_id", err)
			return
		}
		done := make(chan struct{})
		began := time.Now()
		go func() {
			defer close(done)
			myQuery(ctx, o, a, "sleep", "SELECT SLEEP(5) AS kill_query_marker_go FROM "+T+" WHERE id = 1")
		}()
		if _, _, err := waitMyRunning(ctx, "kill_query_marker_go"); err != nil {
			o.err("wait for the sleep", err)
		}
		_, kerr := b.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id))
		<-done
		o.err("kill query", kerr)
		o.linef("interrupted: %v", time.Since(began) < 4*time.Second)
		myQuery(ctx, o, a, "after kill", "SELECT 1")
	},
}

// stmtQ lets a prepared *sql.Stmt be used where a query text is expected (the text is ignored).
type stmtQ struct{ st *sql.Stmt }

func (s stmtQ) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.st.QueryContext(ctx, args...)
}

func (s stmtQ) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return s.st.ExecContext(ctx, args...)
}
