package mytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// txBaton starts a baton in pool_mode transaction with at most max connections per node.
func txBaton(t *testing.T, max int, mod func(*topology.Cluster)) *batontest.Baton {
	t.Helper()
	return batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = max
		if mod != nil {
			mod(cl)
		}
	})
}

// txConn opens one client session through b.
func txConn(t testing.TB, b *batontest.Baton, params string) *sql.Conn {
	t.Helper()
	c, err := cluster.OpenMySQL(t, b.DSN(my, params)).Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pool_mode transaction: 16 clients share two connections per node; each has its own
// database, time zone, sql_mode, user variable and prepared statements (one text shared by
// all, one of its own), and runs transactions. What each reads back is computed from its own
// settings, not from baton's counters; in session mode the same load cannot run at all.
func TestMyTxPoolKeepsEachSessionsState(t *testing.T) {
	b := txBaton(t, 2, nil)
	other := otherDB(t)
	tbl := unique("txpool")
	mustExec(t, primaryRoot(t), "CREATE TABLE "+my.Opts.AppDB+"."+tbl+" (client INT, round INT)")
	waitReplicated(t)
	const clients, rounds = 16, 8
	modes := []string{"", "ANSI_QUOTES", "PIPES_AS_CONCAT", "NO_BACKSLASH_ESCAPES"}
	var firstRound sync.WaitGroup
	firstRound.Add(clients)
	allStarted := make(chan struct{})
	go func() { firstRound.Wait(); close(allStarted) }()
	var mu sync.Mutex
	maxOpen := 0
	watch := func() {
		for _, st := range b.Inst.Clusters()[0].My.PoolStats() {
			mu.Lock()
			maxOpen = max(maxOpen, st[0])
			mu.Unlock()
		}
	}
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				arrived := sync.OnceFunc(firstRound.Done)
				defer arrived()
				db := cluster.OpenMySQL(t, b.DSN(my, ""))
				c, err := db.Conn(ctx)
				if err != nil {
					return err
				}
				defer c.Close()
				me := fmt.Sprintf("client-%d", i)
				wantDB := my.Opts.AppDB
				if i%2 == 1 {
					wantDB = other
				}
				tz := fmt.Sprintf("+%02d:%02d", i%13, (i*7)%60)
				mode := modes[i%len(modes)]
				for _, q := range []string{
					"USE `" + wantDB + "`",
					"SET time_zone = '" + tz + "'",
					"SET SESSION sql_mode = '" + mode + "'",
					"SET @me = '" + me + "'",
				} {
					if _, err := c.ExecContext(ctx, q); err != nil {
						return fmt.Errorf("%s: %s: %w", me, q, err)
					}
				}
				shared, err := c.PrepareContext(ctx, "SELECT ? + 1, @@time_zone, DATABASE()")
				if err != nil {
					return err
				}
				defer shared.Close()
				own, err := c.PrepareContext(ctx, fmt.Sprintf("SELECT ? * %d, @@sql_mode", i+1))
				if err != nil {
					return err
				}
				defer own.Close()
				// 'a' || 'b' is 'ab' under PIPES_AS_CONCAT and 0 (logical OR) otherwise;
				// "x" is a string, or a column name under ANSI_QUOTES; 'a\\b' is 3
				// characters long, or 4 under NO_BACKSLASH_ESCAPES.
				wantConcat, wantLen := "0", 3
				switch mode {
				case "PIPES_AS_CONCAT":
					wantConcat = "ab"
				case "NO_BACKSLASH_ESCAPES":
					wantLen = 4
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
					var gotDB, gotTZ, gotMode, gotMe, concat string
					var n int
					if err := c.QueryRowContext(ctx, `SELECT DATABASE(), @@time_zone, @@sql_mode, @me, 'a' || 'b', CHAR_LENGTH('a\\b')`).Scan(&gotDB, &gotTZ, &gotMode, &gotMe, &concat, &n); err != nil {
						return fmt.Errorf("%s round %d: %w", me, r, err)
					}
					if gotDB != wantDB || gotTZ != tz || gotMode != mode || gotMe != me || concat != wantConcat || n != wantLen {
						return fmt.Errorf("%s round %d: database %q, time_zone %q, sql_mode %q, @me %q, 'a'||'b' %q, length %d; want %q, %q, %q, %q, %q, %d",
							me, r, gotDB, gotTZ, gotMode, gotMe, concat, n, wantDB, tz, mode, me, wantConcat, wantLen)
					}
					if mode == "ANSI_QUOTES" {
						if _, err := c.ExecContext(ctx, `SELECT "x"`); err == nil {
							return fmt.Errorf("%s round %d: \"x\" is a string; under ANSI_QUOTES it names a column", me, r)
						}
					}
					var sum int
					var ptz, pdb string
					if err := shared.QueryRowContext(ctx, r*10).Scan(&sum, &ptz, &pdb); err != nil {
						return fmt.Errorf("%s round %d: shared statement: %w", me, r, err)
					}
					if sum != r*10+1 || ptz != tz || pdb != wantDB {
						return fmt.Errorf("%s round %d: shared statement answered %d, %q, %q; want %d, %q, %q", me, r, sum, ptz, pdb, r*10+1, tz, wantDB)
					}
					var prod int
					var pmode string
					if err := own.QueryRowContext(ctx, r).Scan(&prod, &pmode); err != nil {
						return fmt.Errorf("%s round %d: own statement: %w", me, r, err)
					}
					if prod != r*(i+1) || pmode != mode {
						return fmt.Errorf("%s round %d: own statement answered %d, %q; want %d, %q", me, r, prod, pmode, r*(i+1), mode)
					}
					tx, err := c.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s`.%s VALUES (%d, %d)", my.Opts.AppDB, tbl, i, r)); err != nil {
						tx.Rollback()
						return err
					}
					var inTx int
					if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM `%s`.%s WHERE client = %d", my.Opts.AppDB, tbl, i)).Scan(&inTx); err != nil {
						tx.Rollback()
						return err
					}
					if err := tx.Commit(); err != nil {
						return err
					}
					if inTx != r+1 {
						return fmt.Errorf("%s round %d: its transaction sees %d of its rows; want %d", me, r, inTx, r+1)
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
			t.Error(err)
		}
	}
	if maxOpen > 2 {
		t.Fatalf("a node had %d backend connections; the pool allows 2", maxOpen)
	}
	t.Logf("%d clients × %d rounds on at most %d connections per node", clients, rounds, maxOpen)
}

// backendID is the server thread id of the connection that runs the session's next statement
// on the primary (SELECT CONNECTION_ID() alone is answered by baton with its own id).
func backendID(t *testing.T, c *sql.Conn) int64 {
	t.Helper()
	var id int64
	if err := c.QueryRowContext(ctxT(t), "SELECT CONNECTION_ID() + 0").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func pinnedCount(b *batontest.Baton, reason string) int64 {
	return b.Inst.Clusters()[0].My.Metrics().Pinned.Snapshot()[reason]
}

// primaryBusy reports whether a session holds a connection to the primary now.
func primaryBusy(b *batontest.Baton) bool {
	for name, st := range b.Inst.Clusters()[0].My.PoolStats() {
		if name == "my1" { // the first node is the primary
			return st[0] != st[1]
		}
	}
	return false
}

// pool_mode transaction, every pin reason: while the state lives the session keeps its
// connection (the state still works after other sessions ran, on the same server thread) and
// baton_pinned_sessions{reason} counts it; when the state goes, so do the pin and the held
// connection.
func TestMyTxPoolPins(t *testing.T) {
	b := txBaton(t, 2, nil)
	lockTbl := unique("pinlock")
	mustExec(t, primaryRoot(t), "CREATE TABLE "+my.Opts.AppDB+"."+lockTbl+" (v INT)")
	waitReplicated(t)
	lockName := unique("pinlock")
	for _, tc := range []struct {
		reason       string
		create, drop []string
		check        string // its answer while the state lives, and after it went
		live, gone   string
	}{
		{"temp_table", []string{"CREATE TEMPORARY TABLE tp (x INT)", "INSERT INTO tp VALUES (41)"},
			[]string{"DROP TEMPORARY TABLE tp"}, "SELECT x + 1 FROM tp", "42", "error 1146"},
		{"lock_tables", []string{"LOCK TABLES " + lockTbl + " WRITE", "INSERT INTO " + lockTbl + " VALUES (42)"},
			[]string{"UNLOCK TABLES"}, "SELECT MAX(v) FROM " + lockTbl + " AS unlocked", "error 1100", "42"},
		{"advisory_lock", []string{"SELECT GET_LOCK('" + lockName + "', 5)", "SELECT GET_LOCK('" + lockName + "', 5)"},
			[]string{"SELECT RELEASE_LOCK('" + lockName + "')", "SELECT RELEASE_LOCK('" + lockName + "')"},
			"SELECT IS_USED_LOCK('" + lockName + "') = CONNECTION_ID() + 0", "1", "NULL"},
		{"user_variable", []string{"SELECT @uv := 42"}, []string{"SET @uv = NULL"}, "SELECT @uv", "42", "NULL"},
		{"sql_prepare", []string{"PREPARE ps FROM 'SELECT 42'"}, []string{"DEALLOCATE PREPARE ps"}, "EXECUTE ps", "42", "error 1243"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			c := txConn(t, b, "")
			check := func(when, want string) {
				t.Helper()
				var v sql.NullString
				got := "NULL"
				var me *mysql.MySQLError
				if err := c.QueryRowContext(ctxT(t), tc.check).Scan(&v); errors.As(err, &me) {
					got = fmt.Sprintf("error %d", me.Number)
				} else if err != nil {
					t.Fatalf("%s %s: %v", tc.check, when, err)
				} else if v.Valid {
					got = v.String
				}
				if got != want {
					t.Fatalf("%s %s: %s; want %s", tc.check, when, got, want)
				}
			}
			for _, q := range tc.create {
				mustExec(t, c, q)
			}
			id := backendID(t, c)
			if got := pinnedCount(b, tc.reason); got != 1 {
				t.Fatalf("baton_pinned_sessions{%s} = %d; want 1", tc.reason, got)
			}
			for range 6 { // others share what is left of the pool
				o := txConn(t, b, "")
				backendID(t, o)
				o.Close()
			}
			check("while pinned", tc.live)
			if again := backendID(t, c); again != id {
				t.Fatalf("the pinned session moved from server thread %d to %d", id, again)
			}
			if !primaryBusy(b) {
				t.Fatal("the pinned session holds no primary connection")
			}
			for _, q := range tc.drop {
				mustExec(t, c, q)
			}
			if got := pinnedCount(b, tc.reason); got != 0 {
				t.Fatalf("after %q baton_pinned_sessions{%s} = %d; want 0", tc.drop, tc.reason, got)
			}
			// A statement that reads a table: the server forgets the earlier statements'
			// errors (the check's 1100), which would otherwise keep the connection.
			mustExec(t, c, "SELECT COUNT(*) FROM "+lockTbl)
			if primaryBusy(b) {
				t.Fatal("the session still holds a primary connection after its pinned state went")
			}
			check("after the state went", tc.gone) // as on a direct connection
		})
	}
	t.Run("other", func(t *testing.T) {
		// HANDLER … OPEN lives on the server thread, and baton does not follow handlers: the
		// pin lasts until the session ends.
		db := cluster.OpenMySQL(t, b.DSN(my, ""))
		c, err := db.Conn(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, c, "HANDLER "+lockTbl+" OPEN")
		if got := pinnedCount(b, "other"); got != 1 {
			t.Fatalf("baton_pinned_sessions{other} = %d; want 1", got)
		}
		var v int
		if err := c.QueryRowContext(ctxT(t), "HANDLER "+lockTbl+" READ FIRST").Scan(&v); err != nil || v != 42 {
			t.Fatalf("HANDLER READ while pinned: %d, %v", v, err)
		}
		c.Close()
		db.Close()
		waitFor(t, "the pin to end with the session", func() bool { return pinnedCount(b, "other") == 0 })
	})
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// killThread kills a server thread on the primary from a direct admin connection and waits
// until the server has let it go.
func killThread(t *testing.T, id int64) {
	t.Helper()
	root := primaryRoot(t)
	mustExec(t, root, fmt.Sprintf("KILL %d", id))
	waitFor(t, "the killed thread to go", func() bool {
		var n int
		root.QueryRowContext(ctxT(t), "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n)
		return n == 0
	})
}

// pool_mode transaction: a backend killed under an unpinned session goes unnoticed (its next
// statement gets another connection); under a pinned one the session ends with a MySQL error,
// as it would on a direct connection.
func TestMyTxPoolKilledBackend(t *testing.T) {
	b := txBaton(t, 2, nil)
	t.Run("unpinned", func(t *testing.T) {
		c := txConn(t, b, "")
		mustExec(t, c, "SET time_zone = '+03:00'")
		killThread(t, backendID(t, c))
		var tz string
		if err := c.QueryRowContext(ctxT(t), "SELECT @@time_zone").Scan(&tz); err != nil || tz != "+03:00" {
			t.Fatalf("after its last backend was killed: %q, %v; want +03:00 and no error", tz, err)
		}
		mustExec(t, c, "SELECT CONNECTION_ID() + 0") // a primary statement too
	})
	t.Run("pinned", func(t *testing.T) {
		c := txConn(t, b, "")
		mustExec(t, c, "CREATE TEMPORARY TABLE kp (x INT)")
		killThread(t, backendID(t, c))
		_, err := c.ExecContext(ctxT(t), "INSERT INTO kp VALUES (1)")
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1927 {
			t.Fatalf("a statement after the pinned backend was killed: %v; want MySQL error 1927", err)
		}
		if _, err := c.ExecContext(ctxT(t), "SELECT 1"); err == nil {
			t.Fatal("the session went on after losing its temporary table")
		}
		waitFor(t, "the pin to end with the session", func() bool { return pinnedCount(b, "temp_table") == 0 })
	})
}

// pool_mode transaction: statements are prepared once per connection by text, shared by the
// sessions that prepare it; one session's close leaves another's working; at most
// max_prepared_statements stay prepared per connection (the server's own count shows it).
func TestMyTxPoolSharedStatements(t *testing.T) {
	b := txBaton(t, 1, func(cl *topology.Cluster) { cl.Pool.MaxPreparedStatements = 3 })
	ctx := ctxT(t)
	// The server's count is global: other sessions (of the suite's shared baton) may hold
	// statements on pooled connections; only what this test adds counts.
	prepared := func(n *cluster.MyNode) int {
		var name string
		var count int
		if err := cluster.OpenMySQL(t, n.RootDSN()).QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").Scan(&name, &count); err != nil {
			t.Fatal(err)
		}
		return count
	}
	before := map[string]int{}
	for _, n := range my.Nodes() {
		before[n.Name] = prepared(n)
	}
	a, c := txConn(t, b, ""), txConn(t, b, "")
	const q = "SELECT ? * 7"
	sa, err := a.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	run := func(st *sql.Stmt, arg int) int {
		t.Helper()
		var v int
		if err := st.QueryRowContext(ctx, arg).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := run(sa, 2); got != 14 {
		t.Fatalf("a: %d", got)
	}
	sa.Close()
	if got := run(sc, 3); got != 21 {
		t.Fatalf("c after a closed the same text: %d", got)
	}
	var stmts []*sql.Stmt
	for i := range 10 {
		st, err := c.PrepareContext(ctx, fmt.Sprintf("SELECT %d + ?", i*100))
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, st)
	}
	for round := range 3 {
		for i, st := range stmts {
			if got, want := run(st, round), i*100+round; got != want {
				t.Fatalf("round %d statement %d: %d; want %d", round, i, got, want)
			}
		}
	}
	for _, n := range my.Nodes() {
		if count := prepared(n) - before[n.Name]; count > 3 {
			t.Fatalf("node %s has %d more prepared statements; the bound is 3 per connection (one connection)", n.Name, count)
		}
	}
}

// pool_mode transaction: COM_STMT_SEND_LONG_DATA and the execution that uses it run on one
// connection, while another session keeps using the pool's other connection.
func TestMyTxPoolLongData(t *testing.T) {
	b := txBaton(t, 2, nil)
	ctx := ctxT(t)
	tbl := unique("longdata")
	mustExec(t, primaryRoot(t), "CREATE TABLE "+my.Opts.AppDB+"."+tbl+" (id INT, b LONGBLOB)")
	// A small maxAllowedPacket makes the driver send large arguments as long data.
	c := txConn(t, b, "maxAllowedPacket=4096")
	other := txConn(t, b, "")
	blob := []byte(strings.Repeat("0123456789abcdef", 4096))
	for i := range 5 {
		if _, err := c.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (?, ?)", i, blob); err != nil {
			t.Fatal(err)
		}
		mustExec(t, other, "SELECT 1")
	}
	var n, l int
	if err := primaryRoot(t).QueryRowContext(ctx, "SELECT COUNT(*), MIN(LENGTH(b)) FROM "+my.Opts.AppDB+"."+tbl+" WHERE b = ?", blob).Scan(&n, &l); err != nil || n != 5 || l != len(blob) {
		t.Fatalf("rows with the whole value: %d (length %d), %v; want 5 of %d bytes", n, l, err, len(blob))
	}
}

// pool_mode transaction: what describes the previous statement (warnings, errors,
// ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID(), GET DIAGNOSTICS) answers as on a direct
// connection, although between the statements another session uses the connection the
// session ran on (with warnings, inserts and settings of its own).
func TestMyTxPoolDiagnosticsMatchDirect(t *testing.T) {
	b := txBaton(t, 2, nil)
	ctx := ctxT(t)
	dist := unique("disturb")
	mustExec(t, primaryRoot(t), "CREATE TABLE "+my.Opts.AppDB+"."+dist+" (id INT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT = 5000")
	waitReplicated(t)
	disturbers := []string{
		"INSERT INTO " + dist + " (v) VALUES (1)",
		"SELECT CAST('zz' AS INT)",
		"SET time_zone = '+09:00'",
		"INSERT INTO " + dist + " (v) VALUES (2), (3)",
		"SELECT * FROM " + dist,
	}
	stmts := []string{
		"CREATE TABLE {t}_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT = 100",
		"INSERT INTO {t}_ai (v) VALUES (1), (2)",
		"SELECT LAST_INSERT_ID()",
		"SELECT ROW_COUNT()",
		"INSERT INTO {t} (id, v) VALUES (LAST_INSERT_ID(), 1)",
		"SELECT id FROM {t}",
		"SELECT ROW_COUNT()",
		"SELECT FOUND_ROWS()",
		"SHOW WARNINGS",
		"SELECT @@warning_count",
		"UPDATE {t} SET v = v + 1",
		"SELECT ROW_COUNT() AS rc",
		"SELECT @@time_zone",
		"SELECT CAST('abc' AS INT) AS v",
		"SHOW WARNINGS",
		"SELECT @@warning_count",
		"SELECT 1 UNION SELECT 2 UNION SELECT 3",
		"SELECT FOUND_ROWS() AS `found`",
		"!SELECT no_such_column FROM {t}",
		"SHOW ERRORS",
		"SELECT @@error_count",
		"SELECT LAST_INSERT_ID() + 0",
		"GET DIAGNOSTICS @n = NUMBER",
		"SELECT @n",
		"SELECT LAST_INSERT_ID(555)",
		"SELECT LAST_INSERT_ID()",
		"SELECT FOUND_ROWS()",
		"SELECT ROW_COUNT()",
		"INSERT INTO {t} (id, v) VALUES (LAST_INSERT_ID(), 2)",
		"SELECT id FROM {t} WHERE v = 2",
		"SELECT SQL_CALC_FOUND_ROWS id FROM {t} ORDER BY id LIMIT 1",
		"SELECT FOUND_ROWS()",
		"SELECT ROW_COUNT()",
		"BEGIN",
		"SELECT SQL_CALC_FOUND_ROWS id FROM {t} ORDER BY id LIMIT 1",
		"SELECT FOUND_ROWS() AS n",
		"SELECT ROW_COUNT()",
		"COMMIT",
		// The same with the session pinned (it keeps its connection).
		"CREATE TEMPORARY TABLE {t}_tmp (x INT)",
		"INSERT INTO {t}_tmp VALUES (1), (2), (3)",
		"SELECT ROW_COUNT()",
		"SELECT x FROM {t}_tmp",
		"SELECT LAST_INSERT_ID(777)",
		"SELECT FOUND_ROWS()",
		"SELECT ROW_COUNT()",
		"SELECT LAST_INSERT_ID()",
		"SELECT CAST('q' AS INT)",
		"SELECT 1",
		"SHOW WARNINGS",
	}
	var answers [2][]string
	for i, dsn := range []string{my.Primary.AppDSN(), b.DSN(my, "")} {
		tbl := unique("txdiag")
		c, err := cluster.OpenMySQL(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := txConn(t, b, "")
		mustExec(t, c, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, v INT)")
		for j, q := range stmts {
			q = strings.ReplaceAll(strings.TrimPrefix(q, "!"), "{t}", tbl)
			a := sessionAnswers(t, c, []string{q})
			answers[i] = append(answers[i], strings.ReplaceAll(a[0], tbl, "T"))
			mustExec(t, d, disturbers[j%len(disturbers)])
		}
		c.Close()
	}
	for j := range answers[0] {
		if answers[0][j] != answers[1][j] {
			t.Errorf("direct: %s\n        baton:  %s", answers[0][j], answers[1][j])
		}
	}
}

// rawCommand sends one command on cc and returns the payloads of its answer and the tracker
// that followed it.
func rawCommand(t *testing.T, cc *mywire.ClientConn, cmd byte, arg []byte) ([][]byte, *mywire.Tracker) {
	t.Helper()
	if _, err := cc.Conn.Write(mywire.AppendCommand(nil, cmd, arg)); err != nil {
		t.Fatal(err)
	}
	tr := mywire.NewTracker(cmd, cc.Caps)
	var out [][]byte
	for done := false; !done; {
		p, _, err := cc.R.Next()
		if err != nil {
			t.Fatal(err)
		}
		if done, err = tr.Feed(p); err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), p...))
	}
	if e := tr.Err(); e != nil {
		t.Fatalf("command 0x%02x: %d %s", cmd, e.Code, e.Message)
	}
	return out, tr
}

// pool_mode transaction: a cursor (COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY, then
// COM_STMT_FETCH) keeps its connection until it is exhausted, while other sessions go on; then
// the connection goes back.
func TestMyTxPoolCursor(t *testing.T) {
	b := txBaton(t, 2, nil)
	addr := b.Inst.Clusters()[0].Addr().String()
	caps := mywire.DefaultClientCaps &^ mywire.ClientDeprecateEOF
	cc := rawConn(t, addr, mywire.ClientConfig{Caps: caps})
	_, tr := rawCommand(t, cc, mywire.ComStmtPrepare, []byte("SELECT seq FROM seq_1_to_10"))
	id, _, _, ok := tr.Prepared()
	if !ok {
		t.Fatal("no PREPARE_OK")
	}
	le := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	exec := append(append(le(id), 1), le(1)...) // CURSOR_TYPE_READ_ONLY, iteration count 1
	if _, tr = rawCommand(t, cc, mywire.ComStmtExecute, exec); tr.Status()&mywire.StatusCursorExists == 0 {
		t.Fatal("the execution opened no cursor")
	}
	other := txConn(t, b, "")
	var rows int
	for fetches := 0; ; fetches++ {
		for range 3 { // other sessions go on meanwhile
			where(t, other, ctxT(t), "")
			backendID(t, other)
		}
		if fetches > 0 && idleEverywhere(b) {
			t.Fatal("the cursor's connection went back to the pool while the cursor was open")
		}
		out, tr := rawCommand(t, cc, mywire.ComStmtFetch, append(le(id), le(3)...))
		rows += len(out) - 1 // rows, then the EOF
		if tr.Status()&mywire.StatusLastRowSent != 0 {
			break
		}
		if fetches > 10 {
			t.Fatal("the cursor never ended")
		}
	}
	if rows != 10 {
		t.Fatalf("fetched %d rows; want 10", rows)
	}
	waitFor(t, "the cursor's connection to go back", func() bool { return idleEverywhere(b) })
}

// idleEverywhere reports whether no session holds a backend connection.
func idleEverywhere(b *batontest.Baton) bool {
	for _, st := range b.Inst.Clusters()[0].My.PoolStats() {
		if st[0] != st[1] {
			return false
		}
	}
	return true
}

// pool_mode transaction: state that baton replays does not pin — several SETs in one
// multi-statement text, SET @v = literal — and SET TRANSACTION (the next transaction only)
// keeps the connection until that transaction, without reaching another session.
func TestMyTxPoolReplayedState(t *testing.T) {
	b := txBaton(t, 2, nil)
	ctx := ctxT(t)
	tbl := unique("txset")
	mustExec(t, primaryRoot(t), "CREATE TABLE "+my.Opts.AppDB+"."+tbl+" (v INT)")
	waitReplicated(t)
	c := txConn(t, b, "multiStatements=true")
	mustExec(t, c, "SET time_zone = '+01:30'; SET SESSION sql_mode = 'ANSI_QUOTES'")
	mustExec(t, c, "SET @who = 'me', @n = 42")
	if n := pinnedCount(b, "other") + pinnedCount(b, "user_variable"); n != 0 {
		t.Fatalf("replayable state pinned %d sessions", n)
	}
	if !idleEverywhere(b) {
		t.Fatal("the session kept a connection after replayable state")
	}
	others := []*sql.Conn{txConn(t, b, ""), txConn(t, b, "")}
	for i := range 4 {
		for _, o := range others {
			mustExec(t, o, "SET time_zone = '-0"+fmt.Sprint(i+1)+":00'")
			backendID(t, o)
		}
		var tz, mode, who string
		var n int
		if err := c.QueryRowContext(ctx, "SELECT @@time_zone, @@sql_mode, @who, @n").Scan(&tz, &mode, &who, &n); err != nil {
			t.Fatal(err)
		}
		if tz != "+01:30" || mode != "ANSI_QUOTES" || who != "me" || n != 42 {
			t.Fatalf("round %d: %q %q %q %d; want the session's +01:30, ANSI_QUOTES, me, 42", i, tz, mode, who, n)
		}
	}
	// SET TRANSACTION READ ONLY: the session's next transaction is read-only, nobody else's.
	mustExec(t, c, "SET TRANSACTION READ ONLY")
	for _, o := range others {
		mustExec(t, o, "INSERT INTO "+tbl+" VALUES (1)")
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES (2)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1792 {
		t.Fatalf("a write in the transaction after SET TRANSACTION READ ONLY: %v; want error 1792", err)
	}
	tx.Rollback()
	mustExec(t, c, "INSERT INTO "+tbl+" VALUES (3)") // only the next transaction was read-only
}

// pool_mode transaction: an XA transaction keeps its connection from XA START to XA COMMIT,
// also while it is ended and prepared (the server no longer reports IN_TRANS then).
func TestMyTxPoolXA(t *testing.T) {
	b := txBaton(t, 2, nil)
	tbl := unique("txxa")
	mustExec(t, primaryRoot(t), "CREATE TABLE "+my.Opts.AppDB+"."+tbl+" (v INT)")
	c := txConn(t, b, "")
	xid := "'" + unique("xid") + "'"
	for _, q := range []string{"XA START " + xid, "INSERT INTO " + tbl + " VALUES (1)", "XA END " + xid, "XA PREPARE " + xid} {
		mustExec(t, c, q)
	}
	o := txConn(t, b, "")
	for range 4 {
		backendID(t, o)
	}
	if !primaryBusy(b) {
		t.Fatal("the prepared XA transaction's connection went back to the pool")
	}
	mustExec(t, c, "XA COMMIT "+xid)
	var n int
	if err := primaryRoot(t).QueryRowContext(ctxT(t), "SELECT COUNT(*) FROM "+my.Opts.AppDB+"."+tbl).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after XA COMMIT: %d, %v; want 1", n, err)
	}
	mustExec(t, c, "SELECT COUNT(*) FROM "+tbl)
	if !idleEverywhere(b) {
		t.Fatal("the session kept a connection after XA COMMIT")
	}
}

// A session that logs in without a database and runs USE leaves no database behind for the
// next session of the same key (COM_RESET_CONNECTION keeps the current database), in both
// pool modes.
func TestMyPoolNoDatabaseAfterUse(t *testing.T) {
	other := otherDB(t)
	for _, mode := range []topology.PoolMode{topology.PoolTransaction, topology.PoolSession} {
		t.Run(string(mode), func(t *testing.T) {
			b := txBaton(t, 1, func(cl *topology.Cluster) { cl.PoolMode = mode })
			dsn := strings.Replace(b.DSN(my, ""), "/"+my.Opts.AppDB, "/", 1)
			for i := range 3 {
				db := cluster.OpenMySQL(t, dsn)
				c, err := db.Conn(ctxT(t))
				if err != nil {
					t.Fatal(err)
				}
				var got sql.NullString
				var id int64 // (CONNECTION_ID() keeps the read on the primary, where USE ran)
				if err := c.QueryRowContext(ctxT(t), "SELECT DATABASE(), CONNECTION_ID() + 0").Scan(&got, &id); err != nil {
					t.Fatal(err)
				}
				if got.Valid {
					t.Fatalf("session %d starts in database %q; want none", i, got.String)
				}
				mustExec(t, c, "USE "+other)
				mustExec(t, c, "SELECT CONNECTION_ID() + 0")
				c.Close()
				db.Close()
			}
		})
	}
}
