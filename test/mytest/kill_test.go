package mytest

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/go-sql-driver/mysql"
)

// awaitRunningAnywhere waits until some node runs a statement whose text is q.
func awaitRunningAnywhere(t *testing.T, q string) {
	t.Helper()
	var roots []*sql.DB
	for _, n := range my.Nodes() {
		roots = append(roots, cluster.OpenMySQL(t, n.RootDSN()))
	}
	cluster.Eventually(t, 20*time.Second, "a node runs "+q, func() (bool, error) {
		for _, r := range roots {
			var n int
			if err := r.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = ?", q).Scan(&n); err != nil {
				return false, err
			}
			if n > 0 {
				return true, nil
			}
		}
		return false, nil
	})
}

func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// TestConnectionIDIsTheHandshakes (issue 9, item 3): SELECT CONNECTION_ID() through baton
// answers the thread id of baton's greeting, with the column the server sends.
func TestConnectionIDIsTheHandshakes(t *testing.T) {
	cc := rawConn(t, baton.Inst.Clusters()[0].Addr().String(), mywire.ClientConfig{})
	answer, _ := rawQuery(t, cc, "SELECT CONNECTION_ID()")
	row := answer[2] // column count, definition, row (DEPRECATE_EOF)
	v, _, _ := mywire.ReadLenEncString(row)
	if string(v) != fmt.Sprint(cc.ConnID) {
		t.Fatalf("CONNECTION_ID() = %q; the greeting said %d", v, cc.ConnID)
	}
	type col struct {
		name, typ string
		null, ok  bool
		val       uint64
	}
	var cols [2]col
	for i, dsn := range []string{my.Primary.AppDSN(), baton.DSN(my, "")} {
		rows, err := cluster.OpenMySQL(t, dsn).QueryContext(ctxT(t), "select connection_id() ")
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := rows.ColumnTypes()
		cols[i].name, cols[i].typ = ct[0].Name(), ct[0].DatabaseTypeName()
		cols[i].null, cols[i].ok = ct[0].Nullable()
		rows.Next()
		rows.Scan(&cols[i].val)
		rows.Close()
		if cols[i].val == 0 {
			t.Fatalf("no connection id from %s", dsn)
		}
		cols[i].val = 0
	}
	if cols[0] != cols[1] {
		t.Fatalf("direct column %+v; baton %+v", cols[0], cols[1])
	}
}

// TestKillQuery: KILL QUERY of the id CONNECTION_ID() returned, from another connection (what
// Connector/J's Statement.cancel() and query timeouts send), interrupts the statement, through
// baton as directly; the killed session goes on.
func TestKillQuery(t *testing.T) {
	for _, q := range []string{"SELECT SLEEP(20)", "DO SLEEP(20)"} {
		t.Run(q, func(t *testing.T) {
			type result struct {
				val     sql.NullInt64
				errNo   uint16
				killErr error
				after   int
			}
			var res [2]result
			for i, dsn := range []string{my.Primary.AppDSN(), baton.DSN(my, "")} {
				ctx := ctxT(t)
				db := cluster.OpenMySQL(t, dsn)
				a, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				var id uint64
				if err := a.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				began := time.Now()
				go func() {
					if q[0] == 'S' {
						done <- a.QueryRowContext(ctx, q).Scan(&res[i].val)
					} else {
						_, err := a.ExecContext(ctx, q)
						done <- err
					}
				}()
				awaitRunningAnywhere(t, q)
				_, res[i].killErr = db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id))
				err = <-done
				res[i].errNo = errNumber(err)
				if err != nil && res[i].errNo == 0 {
					t.Fatalf("%s: %v", dsn, err)
				}
				if d := time.Since(began); d > 15*time.Second {
					t.Fatalf("%s: the statement ran %v: not killed", dsn, d)
				}
				if err := a.QueryRowContext(ctx, "SELECT 7").Scan(&res[i].after); err != nil {
					t.Fatalf("%s: the session after KILL QUERY: %v", dsn, err)
				}
			}
			if res[0] != res[1] {
				t.Fatalf("direct %+v; baton %+v", res[0], res[1])
			}
		})
	}
}

// TestKillConnection: KILL <id> from another connection ends the session, idle or running;
// an unknown id is 1094, as directly.
func TestKillConnection(t *testing.T) {
	type result struct {
		idleKilled, busyKilled bool
		unknown                uint16
	}
	var res [2]result
	for i, dsn := range []string{my.Primary.AppDSN(), baton.DSN(my, "")} {
		ctx := ctxT(t)
		db := cluster.OpenMySQL(t, dsn)
		kill := func(c *sql.Conn, running string) bool {
			var id uint64
			if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			if running != "" {
				go func() { _, err := c.ExecContext(ctx, running); done <- err }()
				awaitRunningAnywhere(t, running)
			}
			if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
				t.Fatalf("%s: KILL: %v", dsn, err)
			}
			if running != "" {
				if err := <-done; err == nil {
					t.Fatalf("%s: the killed statement succeeded", dsn)
				}
			}
			var v int
			err := c.QueryRowContext(ctx, "SELECT 1").Scan(&v)
			return err != nil
		}
		a, _ := db.Conn(ctx)
		res[i].idleKilled = kill(a, "")
		a.Close()
		b, _ := db.Conn(ctx)
		res[i].busyKilled = kill(b, "DO SLEEP(21)")
		b.Close()
		_, err := db.ExecContext(ctx, "KILL 987654321")
		res[i].unknown = errNumber(err)
	}
	if res[0] != res[1] || !res[1].idleKilled || !res[1].busyKilled || res[1].unknown != 1094 {
		t.Fatalf("direct %+v; baton %+v", res[0], res[1])
	}
}

// TestComProcessKill: COM_PROCESS_KILL (mysql_kill() of Connector/C) of the greeting's thread
// id ends that session, through baton as directly.
func TestComProcessKill(t *testing.T) {
	for _, addr := range []string{my.Primary.Addr(), baton.Inst.Clusters()[0].Addr().String()} {
		victim := rawConn(t, addr, mywire.ClientConfig{})
		killer := rawConn(t, addr, mywire.ClientConfig{})
		var id [4]byte
		binary.LittleEndian.PutUint32(id[:], victim.ConnID)
		if _, err := killer.Conn.Write(mywire.AppendCommand(nil, mywire.ComProcessKill, id[:])); err != nil {
			t.Fatal(err)
		}
		p, _, err := killer.R.Next()
		if err != nil || p[0] != 0x00 {
			t.Fatalf("%s: COM_PROCESS_KILL answered %q, %v; want OK", addr, p, err)
		}
		victim.Conn.Write(mywire.AppendQuery(nil, "SELECT 1"))
		if p, _, err := victim.R.Next(); err == nil && p[0] != 0xff {
			t.Fatalf("%s: the killed session still answers: %q", addr, p)
		}
	}
}
