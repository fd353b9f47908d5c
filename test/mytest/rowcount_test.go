package mytest

import (
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// rywBaton starts baton in read_your_writes mode in front of the shared cluster for one test.
func rywBaton(t *testing.T) *batontest.Baton {
	t.Helper()
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) { cl.Consistency = topology.ReadYourWrites })
	untilSnapshot(t, ctxT(t), b.Inst.Clusters()[0], "baton knows the primary", func(s *topology.Snapshot) bool {
		return s.PrimaryNode() != nil
	})
	return b
}

// sessionAnswers runs statements on one session and returns what each answered: the rows of
// a query as text, "err <code>" for an error, "ok <affected>" for anything else.
func sessionAnswers(t *testing.T, c *sql.Conn, stmts []string) []string {
	t.Helper()
	ctx := ctxT(t)
	var out []string
	for _, q := range stmts {
		rows, err := c.QueryContext(ctx, q)
		if err != nil {
			out = append(out, fmt.Sprintf("%s → error %v", q, err))
			continue
		}
		cols, _ := rows.Columns()
		var got []string
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var cells []string
			for _, v := range vals {
				if v.Valid {
					cells = append(cells, v.String)
				} else {
					cells = append(cells, "NULL")
				}
			}
			got = append(got, strings.Join(cells, "|"))
		}
		if err := rows.Err(); err != nil {
			got = append(got, "error "+err.Error())
		}
		rows.Close()
		out = append(out, q+" → "+strings.Join(got, "; "))
	}
	return out
}

// compareSessions runs stmts on a session through baton (b) and on a direct session to the
// primary (a leading "!" marks a statement expected to fail), with a fresh table named in place of {t}.
func compareSessions(t *testing.T, b *batontest.Baton, stmts []string) {
	t.Helper()
	ctx := ctxT(t)
	var answers [2][]string
	for i, dsn := range []string{my.Primary.AppDSN(), b.DSN(my, "")} {
		tbl := unique("fid")
		db := cluster.OpenMySQL(t, dsn)
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, c, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, v INT)")
		var qs []string
		for _, q := range stmts {
			qs = append(qs, strings.ReplaceAll(strings.TrimPrefix(q, "!"), "{t}", tbl))
		}
		answers[i] = sessionAnswers(t, c, qs)
		if i == 0 {
			for j, a := range answers[i] {
				if strings.Contains(a, " → error") && !strings.HasPrefix(stmts[j], "!") {
					t.Fatalf("direct: %s", a)
				}
			}
		}
		for j := range answers[i] {
			answers[i][j] = strings.ReplaceAll(answers[i][j], tbl, "T")
		}
		c.Close()
	}
	if !reflect.DeepEqual(answers[0], answers[1]) {
		t.Fatalf("answers differ:\ndirect: %q\nbaton:  %q", answers[0], answers[1])
	}
	t.Logf("same answers: %q", answers[0])
}

// TestRYWKeepsRowCount (issue 9, item 6): in read_your_writes mode baton learns each write's
// GTID from the OK packet's session tracking, so ROW_COUNT(), FOUND_ROWS(), the warnings and
// GET DIAGNOSTICS after a write answer as on a direct connection.
func TestRYWKeepsRowCount(t *testing.T) {
	b := rywBaton(t)
	compareSessions(t, b, []string{
		"INSERT INTO {t} (id) VALUES (6), (7)",
		"SELECT ROW_COUNT()",
		"UPDATE {t} SET v = 1 WHERE id >= 6",
		"SELECT ROW_COUNT()",
		"INSERT INTO {t} (id) VALUES (8)",
		"SELECT FOUND_ROWS()",
		"INSERT IGNORE INTO {t} (id) VALUES (9), (6), (10), (7)",
		"SHOW WARNINGS",
		"SELECT @@warning_count",
		"DELETE FROM {t} WHERE id > 8",
		"GET DIAGNOSTICS @rc = ROW_COUNT",
		"SELECT @rc",
	})
}

// TestRYWRowCountOwnTracking: a client that sets session_track_system_variables itself (as
// MariaDB Connector/J does) keeps exact ROW_COUNT() in read_your_writes mode.
func TestRYWRowCountOwnTracking(t *testing.T) {
	b := rywBaton(t)
	compareSessions(t, b, []string{
		"SET SESSION session_track_system_variables = 'time_zone'",
		"INSERT INTO {t} (id) VALUES (6), (7)",
		"SELECT ROW_COUNT()",
		"SET session_track_system_variables = CONCAT(@@global.session_track_system_variables, ',auto_increment_increment')",
		"INSERT INTO {t} (id) VALUES (8), (9), (10)",
		"SELECT ROW_COUNT()",
		"SELECT COUNT(*) FROM {t}",
	})
}

// TestRYWRowCountCLI: the mariadb CLI (which negotiates CLIENT_SESSION_TRACK) sees ROW_COUNT()
// 2 after a two-row INSERT through baton in read_your_writes mode, as directly.
func TestRYWRowCountCLI(t *testing.T) {
	b := rywBaton(t)
	tbl := unique("fidcli")
	mustExec(t, cluster.OpenMySQL(t, my.Primary.AppDSN()), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	for _, addr := range []string{my.Primary.Addr(), b.Inst.Clusters()[0].Addr().String()} {
		out, errOut, code := cliAt(t, addr, strings.ReplaceAll("DELETE FROM {t}; INSERT INTO {t} VALUES (6),(7); SELECT ROW_COUNT()", "{t}", tbl))()
		if code != 0 || strings.TrimSpace(out) != "2" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want ROW_COUNT() 2", addr, code, out, errOut)
		}
	}
}

// rawOK connects to addr with caps (mywire, so the OK packets are visible), runs setup, then
// q, and returns q's OK packet.
func rawOK(t *testing.T, addr string, caps uint32, q string, setup ...string) mywire.OK {
	t.Helper()
	cc := rawConn(t, addr, mywire.ClientConfig{Caps: caps})
	var ok mywire.OK
	for _, s := range append(setup, q) {
		if _, tr := rawQuery(t, cc, s); tr.OK() != nil {
			ok = *tr.OK()
		}
	}
	return ok
}

// TestSessionTrackStripped: baton always tracks last_gtid on its backend connections; clients
// get the OK packets the server would have sent them — no session state for a client without
// CLIENT_SESSION_TRACK, and only their own tracked changes for one with it.
func TestSessionTrackStripped(t *testing.T) {
	b := rywBaton(t)
	tbl := unique("fidok")
	mustExec(t, cluster.OpenMySQL(t, my.Primary.AppDSN()), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	batonAddr := b.Inst.Clusters()[0].Addr().String()
	for _, tc := range []struct {
		name  string
		caps  uint32
		q     string
		setup []string
	}{
		{"no-tracking insert", mywire.DefaultClientCaps &^ mywire.ClientSessionTrack, "INSERT INTO " + tbl + " VALUES (%d)", nil},
		{"tracking insert", mywire.DefaultClientCaps, "INSERT INTO " + tbl + " VALUES (%d)", nil},
		{"tracking set", mywire.DefaultClientCaps, "SET time_zone = '+03:00'", nil},
		{"tracking own list", mywire.DefaultClientCaps, "INSERT INTO " + tbl + " VALUES (%d)", []string{"SET SESSION session_track_system_variables = 'last_gtid,time_zone'"}},
		{"own list without last_gtid", mywire.DefaultClientCaps, "INSERT INTO " + tbl + " VALUES (%d)", []string{"SET SESSION session_track_system_variables = 'time_zone'"}},
		{"Connector/J's list", mywire.DefaultClientCaps, "INSERT INTO " + tbl + " VALUES (%d)",
			[]string{"SET session_track_system_variables = CONCAT(@@global.session_track_system_variables, ',auto_increment_increment')", "SET auto_increment_increment = 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var oks [2]mywire.OK
			for i, addr := range []string{my.Primary.Addr(), batonAddr} {
				q := tc.q
				if strings.Contains(q, "%d") {
					q = fmt.Sprintf(q, seq.Add(1))
				}
				oks[i] = rawOK(t, addr, tc.caps, q, tc.setup...)
			}
			d, bt := oks[0], oks[1]
			if vd, vb := mywire.TrackedSystemVariables(d.SessionState), mywire.TrackedSystemVariables(bt.SessionState); vd["last_gtid"] != "" {
				// The client tracks last_gtid itself: both report one (different GTIDs).
				if vb["last_gtid"] == "" {
					t.Fatalf("baton dropped the client's own last_gtid tracking: %q", bt.SessionState)
				}
				d.SessionState, bt.SessionState = nil, nil
			}
			if !reflect.DeepEqual(d, bt) {
				t.Fatalf("OK packets differ:\ndirect %+v\nbaton  %+v", d, bt)
			}
		})
	}
}

// TestTrackingRestoredOnReuse: a backend connection on which a client set its own tracking
// list goes back to the pool, is reset to the server's default list, and still reports the
// GTIDs of the next session's writes (baton re-adds last_gtid after the reset).
func TestTrackingRestoredOnReuse(t *testing.T) {
	ctx := ctxT(t)
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		cl.Consistency = topology.ReadYourWrites
		cl.Pool.MaxPerNode = 1 // the second session gets the first one's connection
	})
	session := func(qs ...string) string {
		db, err := sql.Open("mysql", b.DSN(my, ""))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			db.Close()
			cluster.Eventually(t, 10*time.Second, "the session ended", func() (bool, error) {
				return b.Inst.Clusters()[0].My.Metrics().Sessions.Load() == 0, nil
			})
		}()
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, q := range qs {
			mustExec(t, c, q)
		}
		var list string
		if err := c.QueryRowContext(ctx, "/* baton:primary */ SELECT @@session_track_system_variables").Scan(&list); err != nil {
			t.Fatal(err)
		}
		return list
	}
	if got := session("SET SESSION session_track_system_variables = 'last_gtid,time_zone'"); got != "last_gtid,time_zone" {
		t.Fatalf("the client's own list reads %q", got)
	}
	if got := session(); !strings.Contains(got, "last_gtid") {
		t.Fatalf("after the reset the reused connection tracks %q: no last_gtid", got)
	}
}
