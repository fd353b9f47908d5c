package mywire

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Integration tests: Connect and Tracker against a real MariaDB (see mariadb_setup_test.go).

func connectMaria(t *testing.T, cfg ClientConfig) *ClientConn {
	t.Helper()
	m := mariaDB(t)
	if cfg.User == "" {
		cfg.User, cfg.Password = mariaUser, mariaPassword
	}
	cc, err := dial(t, m.addr, cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return cc
}

// columnType returns the type byte of a ColumnDefinition41 payload.
func columnType(t *testing.T, def []byte) byte {
	t.Helper()
	c := cursor{b: def}
	for range 6 {
		c.lenencBytes()
	}
	c.lenencInt()
	c.u16()
	c.u32()
	typ := c.u8()
	if c.bad {
		t.Fatalf("bad column definition % x", def)
	}
	return typ
}

// textRow decodes a text-protocol row of lenenc strings.
func textRow(t *testing.T, p []byte) []string {
	t.Helper()
	var vals []string
	for len(p) > 0 {
		if p[0] == 0xfb {
			vals, p = append(vals, "NULL"), p[1:]
			continue
		}
		s, n, ok := ReadLenEncString(p)
		if !ok {
			t.Fatalf("bad text row % x", p)
		}
		vals, p = append(vals, string(s)), p[n:]
	}
	return vals
}

// resultCount re-feeds a response and counts its results (result sets and OKs) and those
// that announced another result (MORE_RESULTS_EXISTS).
func resultCount(t *testing.T, cmd byte, caps uint32, ps [][]byte) (results, more int) {
	tr := NewTracker(cmd, caps)
	for _, p := range ps {
		if _, err := tr.Feed(p); err != nil {
			t.Fatal(err)
		}
		if tr.state == tsFirst || tr.state == tsDone { // this packet ended a result
			results++
			if tr.Status()&StatusMoreResultsExists != 0 {
				more++
			}
		}
	}
	return results, more
}

func executePayload(id uint32, flags byte, params ...int64) []byte {
	p := binary.LittleEndian.AppendUint32([]byte{ComStmtExecute}, id)
	p = append(p, flags, 1, 0, 0, 0)
	if len(params) > 0 {
		p = append(p, make([]byte, (len(params)+7)/8)...) // NULL bitmap
		p = append(p, 1)                                  // new parameters bound
		for range params {
			p = append(p, 0x08, 0) // MYSQL_TYPE_LONGLONG, signed
		}
		for _, v := range params {
			p = binary.LittleEndian.AppendUint64(p, uint64(v))
		}
	}
	return p
}

func TestMariaDBCommands(t *testing.T) {
	base := DefaultClientCaps | ClientMultiStatements | ClientLocalFiles
	for _, variant := range []struct {
		name string
		caps uint32
	}{
		{"deprecate EOF", base},
		{"classic EOF", base &^ ClientDeprecateEOF},
	} {
		t.Run(variant.name, func(t *testing.T) {
			cc := connectMaria(t, ClientConfig{Caps: variant.caps, Database: "mywire"})
			dep := cc.Caps&ClientDeprecateEOF != 0
			if dep != (variant.caps&ClientDeprecateEOF != 0) || cc.Caps&ClientMultiStatements == 0 {
				t.Fatalf("negotiated caps %#x", cc.Caps)
			}
			if !strings.Contains(cc.ServerVersion, "MariaDB") || cc.Status&StatusAutocommit == 0 {
				t.Fatalf("server %q status %#x", cc.ServerVersion, cc.Status)
			}
			eofs := 1 // EOF packets after column definitions
			if dep {
				eofs = 0
			}

			t.Run("SELECT 1", func(t *testing.T) {
				tr, ps := roundTrip(t, cc, query("SELECT 1"))
				if len(ps) != 4+eofs || tr.Err() != nil || tr.Status()&StatusAutocommit == 0 {
					t.Fatalf("%d packets, err %v, status %#x", len(ps), tr.Err(), tr.Status())
				}
				if got := textRow(t, ps[len(ps)-2]); len(got) != 1 || got[0] != "1" {
					t.Fatalf("row %v", got)
				}
			})

			t.Run("multi statements", func(t *testing.T) {
				tr, ps := roundTrip(t, cc, query("SELECT 1; SELECT 2, 3; DO 1"))
				results, more := resultCount(t, ComQuery, cc.Caps, ps)
				if results != 3 || more != 2 || tr.Status()&StatusMoreResultsExists != 0 {
					t.Fatalf("results %d, MORE_RESULTS seen %d times, final status %#x", results, more, tr.Status())
				}
				if tr.OK() == nil {
					t.Fatal("no final OK")
				}
			})

			t.Run("prepared statement", func(t *testing.T) {
				tr, ps := roundTrip(t, cc, append([]byte{ComStmtPrepare}, "SELECT ? + 1 AS a, 'x' AS b"...))
				id, cols, params, ok := tr.Prepared()
				if !ok || cols != 2 || params != 1 || len(ps) != 1+1+2+2*eofs {
					t.Fatalf("Prepared = %d %d %d %v (%d packets)", id, cols, params, ok, len(ps))
				}
				tr, ps = roundTrip(t, cc, executePayload(id, CursorTypeNoCursor, 41))
				if tr.Err() != nil || len(ps) != 1+2+eofs+1+1 {
					t.Fatalf("execute: err %v, %d packets", tr.Err(), len(ps))
				}
				row := ps[len(ps)-2]
				if row[0] != 0 || len(row) < 3 {
					t.Fatalf("binary row % x", row)
				}
				vals := row[2:] // header, NULL bitmap of (2+7+2)/8 = 1 byte
				switch typ := columnType(t, ps[1]); typ {
				case 0x08: // LONGLONG
					if v := binary.LittleEndian.Uint64(vals); v != 42 {
						t.Fatalf("a = %d", v)
					}
					vals = vals[8:]
				case 0xf6: // NEWDECIMAL
					s, n, _ := ReadLenEncString(vals)
					if string(s) != "42" {
						t.Fatalf("a = %q", s)
					}
					vals = vals[n:]
				default:
					t.Fatalf("column a has type %#x", typ)
				}
				if s, _, _ := ReadLenEncString(vals); string(s) != "x" {
					t.Fatalf("b = %q", s)
				}
				tr, _ = roundTrip(t, cc, binary.LittleEndian.AppendUint32([]byte{ComStmtReset}, id))
				if tr.OK() == nil {
					t.Fatalf("reset: %+v", tr.Err())
				}
				close := AppendStmtClose(nil, id)
				if !NoResponse(close[4]) {
					t.Fatal("COM_STMT_CLOSE should have no response")
				}
				if _, err := cc.Conn.Write(close); err != nil {
					t.Fatal(err)
				}
				tr, _ = roundTrip(t, cc, executePayload(id, CursorTypeNoCursor, 1))
				if e := tr.Err(); e == nil || e.Code != 1243 {
					t.Fatalf("execute after close: %+v", e)
				}
			})

			t.Run("cursor and fetch", func(t *testing.T) {
				tr, _ := roundTrip(t, cc, append([]byte{ComStmtPrepare}, "SELECT seq FROM seq_1_to_5"...))
				id, _, _, ok := tr.Prepared()
				if !ok {
					t.Fatalf("prepare: %+v", tr.Err())
				}
				tr, ps := roundTrip(t, cc, executePayload(id, CursorTypeReadOnly))
				if tr.Status()&StatusCursorExists == 0 || len(ps) != 3 {
					t.Fatalf("execute with cursor: status %#x, %d packets, err %v", tr.Status(), len(ps), tr.Err())
				}
				var rows []int
				for range 4 {
					fetch := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte{ComStmtFetch}, id), 2)
					tr, ps = roundTrip(t, cc, fetch)
					if tr.Err() != nil {
						t.Fatalf("fetch: %+v", tr.Err())
					}
					for _, p := range ps[:len(ps)-1] {
						rows = append(rows, int(binary.LittleEndian.Uint64(p[2:])))
					}
					if tr.Status()&StatusLastRowSent != 0 {
						break
					}
				}
				if fmt.Sprint(rows) != "[1 2 3 4 5]" || tr.Status()&StatusLastRowSent == 0 {
					t.Fatalf("rows %v, last status %#x", rows, tr.Status())
				}
				cc.Conn.Write(AppendStmtClose(nil, id))
			})

			t.Run("errors", func(t *testing.T) {
				tr, _ := roundTrip(t, cc, query("SELECT * FROM no_such_table"))
				if e := tr.Err(); e == nil || e.Code != 1146 || e.State != "42S02" || !strings.Contains(e.Message, "no_such_table") {
					t.Fatalf("Err = %+v", e)
				}
				tr, _ = roundTrip(t, cc, query("SELEKT"))
				if e := tr.Err(); e == nil || e.Code != 1064 || e.State != "42000" {
					t.Fatalf("Err = %+v", e)
				}
			})

			t.Run("other commands", func(t *testing.T) {
				for _, c := range []struct {
					name    string
					payload []byte
					packets int // 0 = do not check
				}{
					{"ping", []byte{ComPing}, 1},
					{"init db", append([]byte{ComInitDB}, "mywire"...), 1},
					{"statistics", []byte{ComStatistics}, 1},
					{"field list", append([]byte{ComFieldList}, "t\x00"...), 3},
					{"set option", binary.LittleEndian.AppendUint16([]byte{ComSetOption}, OptionMultiStatementsOn), 1},
					{"reset connection", []byte{ComResetConnection}, 1},
				} {
					tr, ps := roundTrip(t, cc, c.payload)
					if tr.Err() != nil || len(ps) != c.packets {
						t.Fatalf("%s: err %+v, %d packets", c.name, tr.Err(), len(ps))
					}
				}
			})

			t.Run("local infile", func(t *testing.T) {
				roundTrip(t, cc, query("DELETE FROM mywire.t"))
				out, _ := AppendPacket(nil, 0, query("LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE mywire.t FIELDS TERMINATED BY ','"))
				cc.Conn.Write(out)
				tr := NewTracker(ComQuery, cc.Caps)
				p, seq, err := cc.R.Next()
				if err != nil {
					t.Fatal(err)
				}
				if done, err := tr.Feed(p); done || err != nil {
					t.Fatalf("Feed: %v %v", done, err)
				}
				name, ok := tr.WantsLocalInfile()
				if !ok || name != "rows.csv" {
					t.Fatalf("WantsLocalInfile = %q %v (packet %q)", name, ok, p)
				}
				out, seq = AppendPacket(nil, seq+1, []byte("1,one\n2,two\n"))
				out, _ = AppendPacket(out, seq, nil)
				cc.Conn.Write(out)
				p, _, err = cc.R.Next()
				if err != nil {
					t.Fatal(err)
				}
				if done, err := tr.Feed(p); !done || err != nil {
					t.Fatalf("Feed: %v %v", done, err)
				}
				if tr.OK() == nil || tr.OK().AffectedRows != 2 {
					t.Fatalf("OK = %+v, Err = %+v", tr.OK(), tr.Err())
				}
			})

			t.Run("session tracking", func(t *testing.T) {
				roundTrip(t, cc, query("SET session_track_system_variables = 'last_gtid,autocommit'"))
				tr, _ := roundTrip(t, cc, query("INSERT INTO mywire.t VALUES (100, 'gtid')"))
				ok := tr.OK()
				if ok == nil || ok.Status&StatusSessionStateChanged == 0 {
					t.Fatalf("OK = %+v", ok)
				}
				if g, found := TrackedGTIDs(ok.SessionState); !found || !strings.HasPrefix(g, "0-1-") {
					t.Fatalf("TrackedGTIDs = %q %v (state % x)", g, found, ok.SessionState)
				}
				tr, _ = roundTrip(t, cc, query("SET autocommit = 0"))
				if v := TrackedSystemVariables(tr.OK().SessionState); v["autocommit"] != "OFF" {
					t.Fatalf("vars = %v", v)
				}
				tr, _ = roundTrip(t, cc, query("INSERT INTO mywire.t VALUES (101, 'tx')"))
				if tr.Status()&StatusInTrans == 0 {
					t.Fatalf("status %#x: not in a transaction", tr.Status())
				}
				tr, _ = roundTrip(t, cc, query("ROLLBACK; SET autocommit = 1"))
				if tr.Status()&(StatusInTrans|StatusAutocommit) != StatusAutocommit {
					t.Fatalf("status %#x", tr.Status())
				}
				tr, _ = roundTrip(t, cc, query("USE mysql"))
				if s, found := TrackedSchema(tr.OK().SessionState); !found || s != "mysql" {
					t.Fatalf("TrackedSchema = %q %v", s, found)
				}
				roundTrip(t, cc, query("USE mywire"))
			})
		})
	}
}

// A 20 MiB result row (a text row starting with 0xfe) and a 20 MiB query prove split and join.
func TestMariaDBLargePayload(t *testing.T) {
	const n = 20 << 20
	cc := connectMaria(t, ClientConfig{MaxPayload: 64 << 20})
	tr, ps := roundTrip(t, cc, query(fmt.Sprintf("SELECT REPEAT('x', %d)", n)))
	if tr.Err() != nil {
		t.Fatalf("Err = %+v", tr.Err())
	}
	row := ps[len(ps)-2]
	if row[0] != 0xfe || len(row) != 9+n || !bytes.Equal(row[9:], bytes.Repeat([]byte{'x'}, n)) {
		t.Fatalf("row of %d bytes starting % x", len(row), row[:9])
	}
	big := "SELECT LENGTH('" + strings.Repeat("y", n) + "')"
	_, ps = roundTrip(t, cc, query(big))
	if got := textRow(t, ps[len(ps)-2]); got[0] != fmt.Sprint(n) {
		t.Fatalf("LENGTH = %v", got)
	}
	// Over the reader's limit: refused before the body is read.
	small := connectMaria(t, ClientConfig{MaxPayload: 1 << 20})
	out, _ := AppendPacket(nil, 0, query(fmt.Sprintf("SELECT REPEAT('x', %d)", 2<<20)))
	small.Conn.Write(out)
	for {
		if _, _, err := small.R.Next(); err != nil {
			if !errors.Is(err, ErrPacketTooLarge) {
				t.Fatalf("err = %v, want ErrPacketTooLarge", err)
			}
			break
		}
	}
}

func TestMariaDBWrongPassword(t *testing.T) {
	m := mariaDB(t)
	for _, c := range []struct{ user, password, using string }{
		{mariaUser, "bad-pw", "YES"},
		{mariaUser, "", "NO"},
		{"nobody", "x", "YES"},
	} {
		_, err := dial(t, m.addr, ClientConfig{User: c.user, Password: c.password})
		var se *ServerError
		if !errors.As(err, &se) {
			t.Fatalf("%s: err = %v, want *ServerError", c.user, err)
		}
		want := fmt.Sprintf("Access denied for user '%s'@'127.0.0.1' (using password: %s)", c.user, c.using)
		if se.Code != ErAccessDenied || se.State != "28000" || se.Message != want {
			t.Fatalf("got %d %s %q, want 1045 28000 %q", se.Code, se.State, se.Message, want)
		}
	}
}

func TestMariaDBTLS(t *testing.T) {
	m := mariaDB(t)
	pool, err := m.certPool()
	if err != nil {
		t.Fatal(err)
	}
	cc := connectMaria(t, ClientConfig{TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	if _, ok := cc.Conn.(*tls.Conn); !ok || cc.Caps&ClientSSL == 0 {
		t.Fatal("not TLS")
	}
	_, ps := roundTrip(t, cc, query("SHOW SESSION STATUS LIKE 'Ssl_version'"))
	if got := textRow(t, ps[len(ps)-2]); len(got) != 2 || !strings.HasPrefix(got[1], "TLS") {
		t.Fatalf("Ssl_version = %v", got)
	}
}
