package mywire

import (
	"encoding/binary"
	"testing"
)

const (
	capsClassic = ClientProtocol41 | ClientTransactions | ClientSessionTrack
	capsDepEOF  = capsClassic | ClientDeprecateEOF
)

// Payload builders for scripted responses.

func pOK(ok OK, caps uint32) []byte    { return AppendOK(nil, 0, ok, caps)[4:] }
func pOKEOF(ok OK, caps uint32) []byte { return AppendOKAsEOF(nil, 0, ok, caps)[4:] }
func pEOF(status uint16) []byte        { return AppendEOF(nil, 0, 0, status)[4:] }
func pERR(code uint16, msg string) []byte {
	return AppendERR(nil, 0, ERR{Code: code, State: "42000", Message: msg}, ClientProtocol41)[4:]
}
func pCount(n uint64) []byte { return AppendLenEncInt(nil, n) }

func pColumn(name string, typ byte) []byte {
	var b []byte
	for _, s := range []string{"def", "db", "t", "t", name, name} {
		b = AppendLenEncString(b, s)
	}
	b = append(b, 0x0c, 45, 0, 0, 1, 0, 0, typ, 0, 0, 0, 0, 0)
	return b
}

func pTextRow(vals ...string) []byte {
	var b []byte
	for _, v := range vals {
		if v == "NULL" {
			b = append(b, 0xfb)
		} else {
			b = AppendLenEncString(b, v)
		}
	}
	return b
}

func pBinRow(v int64) []byte {
	return binary.LittleEndian.AppendUint64([]byte{0, 0}, uint64(v))
}

func pPrepareOK(id uint32, cols, params uint16) []byte {
	b := []byte{0}
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint16(b, cols)
	b = binary.LittleEndian.AppendUint16(b, params)
	return append(b, 0, 0, 0)
}

type step struct {
	p    []byte
	done bool
}

func steps(ps ...[]byte) []step {
	s := make([]step, len(ps))
	for i, p := range ps {
		s[i] = step{p: p, done: i == len(ps)-1}
	}
	return s
}

func TestTracker(t *testing.T) {
	auto := OK{Status: StatusAutocommit}
	more := OK{Status: StatusAutocommit | StatusMoreResultsExists}
	bigRow := make([]byte, MaxPayload+10)
	bigRow[0] = 0xfe // a text row whose first value has an 8-byte length
	tests := []struct {
		name   string
		cmd    byte
		caps   uint32
		steps  []step
		status uint16
		err    uint16 // ERR code expected at the end
		check  func(t *testing.T, tr *Tracker)
	}{
		{"query OK", ComQuery, capsClassic, steps(pOK(OK{AffectedRows: 3, Status: StatusInTrans}, capsClassic)), StatusInTrans, 0,
			func(t *testing.T, tr *Tracker) {
				if tr.OK() == nil || tr.OK().AffectedRows != 3 {
					t.Fatalf("OK = %+v", tr.OK())
				}
			}},
		{"query ERR", ComQuery, capsClassic, steps(pERR(1064, "syntax")), 0, 1064, nil},
		{"result set classic", ComQuery, capsClassic,
			steps(pCount(2), pColumn("a", 3), pColumn("b", 253), pEOF(StatusAutocommit), pTextRow("1", "x"), pTextRow("NULL", ""), pEOF(StatusAutocommit)),
			StatusAutocommit, 0, nil},
		{"result set deprecate EOF", ComQuery, capsDepEOF,
			steps(pCount(2), pColumn("a", 3), pColumn("b", 253), pTextRow("1", "x"), pTextRow("", "y"), pOKEOF(auto, capsDepEOF)),
			StatusAutocommit, 0, nil},
		{"empty result set", ComQuery, capsDepEOF, steps(pCount(1), pColumn("a", 3), pOKEOF(auto, capsDepEOF)), StatusAutocommit, 0, nil},
		{"row starting with 0xfe", ComQuery, capsDepEOF,
			steps(pCount(1), pColumn("a", 251), bigRow, pOKEOF(auto, capsDepEOF)), StatusAutocommit, 0, nil},
		{"multi results", ComQuery, capsClassic,
			steps(pCount(1), pColumn("a", 3), pEOF(more.Status), pTextRow("1"), pEOF(more.Status),
				pOK(more, capsClassic),
				pCount(1), pColumn("b", 3), pEOF(auto.Status), pTextRow("2"), pEOF(auto.Status)),
			StatusAutocommit, 0, nil},
		{"multi results ending in ERR", ComQuery, capsDepEOF,
			steps(pCount(1), pColumn("a", 3), pTextRow("1"), pOKEOF(more, capsDepEOF), pERR(1146, "no table")), 0 | more.Status, 1146, nil},
		{"ERR in the middle of rows", ComQuery, capsDepEOF, steps(pCount(1), pColumn("a", 3), pTextRow("1"), pERR(1317, "interrupted")), 0, 1317, nil},
		{"local infile", ComQuery, capsClassic, []step{{[]byte("\xfbdata.csv"), false}, {pOK(OK{AffectedRows: 2}, capsClassic), true}}, 0, 0,
			func(t *testing.T, tr *Tracker) {
				if _, ok := tr.WantsLocalInfile(); ok {
					t.Fatal("still wants the file")
				}
			}},
		{"execute binary rows", ComStmtExecute, capsDepEOF,
			steps(pCount(1), pColumn("a", 8), pBinRow(1), pBinRow(2), pOKEOF(auto, capsDepEOF)), StatusAutocommit, 0, nil},
		{"execute OK", ComStmtExecute, capsClassic, steps(pOK(auto, capsClassic)), StatusAutocommit, 0, nil},
		{"execute cursor classic", ComStmtExecute, capsClassic,
			steps(pCount(1), pColumn("a", 8), pEOF(StatusAutocommit|StatusCursorExists)), StatusAutocommit | StatusCursorExists, 0, nil},
		{"execute cursor deprecate EOF", ComStmtExecute, capsDepEOF,
			steps(pCount(1), pColumn("a", 8), pOKEOF(OK{Status: StatusCursorExists}, capsDepEOF)), StatusCursorExists, 0, nil},
		{"execute procedure", ComStmtExecute, capsClassic,
			steps(pCount(1), pColumn("a", 8), pEOF(more.Status), pBinRow(1), pEOF(more.Status|StatusPSOutParams), pOK(auto, capsClassic)),
			StatusAutocommit, 0, nil},
		{"fetch", ComStmtFetch, capsClassic,
			steps(pBinRow(1), pBinRow(2), pEOF(StatusCursorExists|StatusLastRowSent)), StatusCursorExists | StatusLastRowSent, 0, nil},
		{"fetch ERR", ComStmtFetch, capsClassic, steps(pERR(1243, "unknown stmt")), 0, 1243, nil},
		{"prepare classic", ComStmtPrepare, capsClassic,
			steps(pPrepareOK(7, 2, 1), pColumn("?", 253), pEOF(2), pColumn("a", 8), pColumn("b", 8), pEOF(2)), 2, 0,
			func(t *testing.T, tr *Tracker) {
				id, cols, params, ok := tr.Prepared()
				if id != 7 || cols != 2 || params != 1 || !ok {
					t.Fatalf("Prepared = %d %d %d %v", id, cols, params, ok)
				}
			}},
		{"prepare deprecate EOF", ComStmtPrepare, capsDepEOF,
			steps(pPrepareOK(7, 2, 1), pColumn("?", 253), pColumn("a", 8), pColumn("b", 8)), 0, 0, nil},
		{"prepare no params", ComStmtPrepare, capsClassic, steps(pPrepareOK(1, 1, 0), pColumn("a", 8), pEOF(0)), 0, 0, nil},
		{"prepare no columns", ComStmtPrepare, capsClassic, steps(pPrepareOK(1, 0, 2), pColumn("?", 8), pColumn("?", 8), pEOF(0)), 0, 0, nil},
		{"prepare nothing", ComStmtPrepare, capsClassic, steps(pPrepareOK(1, 0, 0)), 0, 0, nil},
		{"prepare ERR", ComStmtPrepare, capsClassic, steps(pERR(1064, "syntax")), 0, 1064,
			func(t *testing.T, tr *Tracker) {
				if _, _, _, ok := tr.Prepared(); ok {
					t.Fatal("Prepared after ERR")
				}
			}},
		{"field list", ComFieldList, capsClassic, steps(pColumn("a", 3), pColumn("b", 3), pEOF(2)), 2, 0, nil},
		{"field list deprecate EOF", ComFieldList, capsDepEOF, steps(pColumn("a", 3), pOKEOF(auto, capsDepEOF)), 2, 0, nil},
		{"statistics", ComStatistics, capsClassic, steps([]byte("Uptime: 5  Threads: 1")), 0, 0, nil},
		{"ping", ComPing, capsClassic, steps(pOK(auto, capsClassic)), 2, 0, nil},
		{"init db ERR", ComInitDB, capsClassic, steps(pERR(1049, "unknown db")), 0, 1049, nil},
		{"set option EOF", ComSetOption, capsClassic, steps(pEOF(2)), 2, 0, nil},
		{"set option OK-as-EOF", ComSetOption, capsDepEOF, steps(pOKEOF(auto, capsDepEOF)), 2, 0, nil},
		{"reset connection", ComResetConnection, capsClassic, steps(pOK(auto, capsClassic)), 2, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.cmd, tt.caps)
			for i, s := range tt.steps {
				done, err := tr.Feed(s.p)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if done != s.done || tr.Done() != s.done {
					t.Fatalf("step %d: done = %v, want %v", i, done, s.done)
				}
				if i == 0 && tt.cmd == ComQuery && s.p[0] == 0xfb {
					if name, ok := tr.WantsLocalInfile(); !ok || name != "data.csv" {
						t.Fatalf("WantsLocalInfile = %q %v", name, ok)
					}
				}
			}
			if tr.Status() != tt.status {
				t.Fatalf("status = %#x, want %#x", tr.Status(), tt.status)
			}
			if tt.err != 0 && (tr.Err() == nil || tr.Err().Code != tt.err) {
				t.Fatalf("Err = %+v, want code %d", tr.Err(), tt.err)
			}
			if tt.err == 0 && tr.Err() != nil {
				t.Fatalf("unexpected Err %+v", tr.Err())
			}
			if _, err := tr.Feed(pOK(auto, tt.caps)); err == nil {
				t.Fatal("packet after the end accepted")
			}
			if tt.check != nil {
				tt.check(t, tr)
			}
		})
	}
}

func TestTrackerNoResponse(t *testing.T) {
	for _, cmd := range []byte{ComStmtClose, ComStmtSendLongData, ComQuit} {
		if !NoResponse(cmd) || !NewTracker(cmd, capsClassic).Done() {
			t.Errorf("command %#x should have no response", cmd)
		}
	}
	for _, cmd := range []byte{ComQuery, ComPing, ComStmtReset, ComStmtExecute} {
		if NoResponse(cmd) || NewTracker(cmd, capsClassic).Done() {
			t.Errorf("command %#x should have a response", cmd)
		}
	}
}

func TestTrackerRejects(t *testing.T) {
	tests := []struct {
		name string
		cmd  byte
		caps uint32
		ps   [][]byte
	}{
		{"empty packet", ComQuery, capsClassic, [][]byte{{}}},
		{"zero columns", ComQuery, capsClassic, [][]byte{{0xfc, 0, 0}}},
		{"absurd column count", ComQuery, capsClassic, [][]byte{{0xfd, 0, 0, 1}}},
		{"missing EOF after columns", ComQuery, capsClassic, [][]byte{pCount(1), pColumn("a", 3), pTextRow("1")}},
		{"long 0xfe in classic rows", ComQuery, capsClassic, [][]byte{pCount(1), pColumn("a", 3), pEOF(0), append([]byte{0xfe}, make([]byte, 20)...)}},
		{"text row in binary result", ComStmtExecute, capsDepEOF, [][]byte{pCount(1), pColumn("a", 3), pTextRow("1")}},
		{"short PREPARE_OK", ComStmtPrepare, capsClassic, [][]byte{{0, 1, 0, 0, 0}}},
		{"row for ping", ComPing, capsClassic, [][]byte{pTextRow("x")}},
		{"garbage after local infile", ComQuery, capsClassic, [][]byte{[]byte("\xfbf"), pTextRow("x")}},
		{"truncated OK", ComQuery, capsClassic, [][]byte{{0, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.cmd, tt.caps)
			var err error
			for _, p := range tt.ps {
				if _, err = tr.Feed(p); err != nil {
					break
				}
			}
			if !isFormatError(err) {
				t.Fatalf("err = %v, want a FormatError", err)
			}
			if _, err := tr.Feed(pOK(OK{}, tt.caps)); err == nil {
				t.Fatal("tracker accepted a packet after failing")
			}
		})
	}
}

func TestStmtID(t *testing.T) {
	p := []byte{ComStmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0}
	if id, ok := StmtID(p); !ok || id != 1 {
		t.Fatalf("StmtID = %d %v", id, ok)
	}
	SetStmtID(p, 0xdeadbeef)
	if id, _ := StmtID(p); id != 0xdeadbeef || p[5] != 0 {
		t.Fatalf("after SetStmtID: % x", p)
	}
	for _, p := range [][]byte{{ComQuery, 1, 2, 3, 4}, {ComStmtClose, 1, 2, 3}, nil} {
		if _, ok := StmtID(p); ok {
			t.Errorf("% x has a statement id", p)
		}
		SetStmtID(p, 5) // no-op, no panic
	}
	seq, payload := unframe(t, AppendStmtClose(nil, 42))
	if id, ok := StmtID(payload); seq != 0 || !ok || id != 42 || payload[0] != ComStmtClose {
		t.Fatalf("AppendStmtClose: % x", payload)
	}
	_, payload = unframe(t, AppendQuery(nil, "SELECT 1"))
	if string(payload) != "\x03SELECT 1" {
		t.Fatalf("AppendQuery: %q", payload)
	}
	_, payload = unframe(t, AppendCommand(nil, ComInitDB, []byte("shop")))
	if string(payload) != "\x02shop" {
		t.Fatalf("AppendCommand: %q", payload)
	}
}

// Warnings and Rows describe the last result: what a later ROW_COUNT(), FOUND_ROWS() or SHOW
// WARNINGS is about.
func TestTrackerOutcome(t *testing.T) {
	for _, tc := range []struct {
		name     string
		caps     uint32
		cmd      byte
		ps       [][]byte
		warnings uint16
		rows     uint64
		rs       bool
	}{
		{"ok", capsClassic, ComQuery, [][]byte{pOK(OK{AffectedRows: 3, Warnings: 2}, capsClassic)}, 2, 0, false},
		{"result set", capsClassic, ComQuery, [][]byte{pCount(1), pColumn("a", TypeLong), pEOF(0),
			pTextRow("1"), pTextRow("2"), AppendEOF(nil, 0, 1, 0)[4:]}, 1, 2, true},
		{"result set, deprecate EOF", capsDepEOF, ComQuery, [][]byte{pCount(1), pColumn("a", TypeLong),
			pTextRow("1"), pOKEOF(OK{Warnings: 4}, capsDepEOF)}, 4, 1, true},
		{"result set then OK", capsClassic, ComQuery, [][]byte{pCount(1), pColumn("a", TypeLong), pEOF(0),
			pTextRow("1"), pEOF(StatusMoreResultsExists), pOK(OK{}, capsClassic)}, 0, 1, false},
		{"binary rows", capsClassic, ComStmtExecute, [][]byte{pCount(1), pColumn("a", TypeLongLong), pEOF(0),
			pBinRow(1), pBinRow(2), pBinRow(3), pEOF(0)}, 0, 3, true},
	} {
		tr := NewTracker(tc.cmd, tc.caps)
		for i, p := range tc.ps {
			done, err := tr.Feed(p)
			if err != nil || done != (i == len(tc.ps)-1) {
				t.Fatalf("%s: packet %d: done %v, %v", tc.name, i, done, err)
			}
		}
		rows, rs := tr.Rows()
		if tr.Warnings() != tc.warnings || rows != tc.rows || rs != tc.rs {
			t.Errorf("%s: warnings %d, rows %d, result set %v; want %d, %d, %v", tc.name, tr.Warnings(), rows, rs, tc.warnings, tc.rows, tc.rs)
		}
	}
}
