package clients

import (
	"context"
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
		cfg, err := mysql.ParseDSN(tg.myDSN(""))
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
