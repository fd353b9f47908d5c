package mywire

import (
	"bytes"
	"reflect"
	"testing"
)

const caps41 = ClientProtocol41 | ClientTransactions

// unframe returns the payload of a single framed packet.
func unframe(t *testing.T, wire []byte) (byte, []byte) {
	t.Helper()
	p, seq, err := ReadPacket(bytes.NewReader(wire), 0)
	if err != nil {
		t.Fatalf("unframe: %v", err)
	}
	return seq, p
}

func TestOKRoundTrip(t *testing.T) {
	ss := []byte{SessionTrackSchema, 4, 3, 'a', 'p', 'p'}
	tests := []struct {
		name string
		caps uint32
		ok   OK
		want OK // what decoding gives back (fields a caps set cannot carry are lost)
	}{
		{"41 minimal", caps41, OK{Status: StatusAutocommit}, OK{Status: StatusAutocommit}},
		{"41 full", caps41, OK{AffectedRows: 300, LastInsertID: 1 << 40, Status: StatusInTrans, Warnings: 2, Info: "Rows matched: 1"},
			OK{AffectedRows: 300, LastInsertID: 1 << 40, Status: StatusInTrans, Warnings: 2, Info: "Rows matched: 1"}},
		{"transactions only", ClientTransactions, OK{AffectedRows: 1, Status: 3, Warnings: 9, Info: "x"}, OK{AffectedRows: 1, Status: 3, Info: "x"}},
		{"pre-4.1", 0, OK{AffectedRows: 1, Status: 3, Info: "x"}, OK{AffectedRows: 1, Info: "x"}},
		{"session track no info", caps41 | ClientSessionTrack, OK{Status: StatusAutocommit}, OK{Status: StatusAutocommit}},
		{"session track info", caps41 | ClientSessionTrack, OK{Info: "hello"}, OK{Info: "hello"}},
		{"session state", caps41 | ClientSessionTrack, OK{Status: StatusSessionStateChanged, SessionState: ss},
			OK{Status: StatusSessionStateChanged, SessionState: ss}},
		{"session state ignored without cap", caps41, OK{Status: StatusSessionStateChanged, SessionState: ss},
			OK{Status: StatusSessionStateChanged}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, p := unframe(t, AppendOK(nil, 7, tt.ok, tt.caps))
			if seq != 7 || p[0] != 0 {
				t.Fatalf("seq %d header %x", seq, p[0])
			}
			got, err := DecodeOK(p, tt.caps)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			// OK-as-EOF: only with DEPRECATE_EOF.
			_, p = unframe(t, AppendOKAsEOF(nil, 1, tt.ok, tt.caps))
			if _, err := DecodeOK(p, tt.caps); err == nil {
				t.Fatal("0xfe OK accepted without DEPRECATE_EOF")
			}
			got, err = DecodeOK(p, tt.caps|ClientDeprecateEOF)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("OK-as-EOF: got %+v %v", got, err)
			}
		})
	}
}

func TestDecodeOKMalformed(t *testing.T) {
	for _, p := range [][]byte{nil, {1}, {0}, {0, 0}, {0, 0, 0, 1}, {0, 0xfb, 0, 0, 0, 0, 0}, {0xff, 0, 0}} {
		if ok, err := DecodeOK(p, caps41); err == nil {
			t.Errorf("% x decoded as %+v", p, ok)
		}
	}
	// Session state that runs past the end.
	if _, err := DecodeOK([]byte{0, 0, 0, 0, 0x40, 0, 0, 0, 9, 1}, caps41|ClientSessionTrack); err == nil {
		t.Error("overlong session state accepted")
	}
}

func TestERRRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		caps uint32
		in   ERR
		want ERR
	}{
		{"41", caps41, ERR{Code: 1045, State: "28000", Message: "Access denied"}, ERR{Code: 1045, State: "28000", Message: "Access denied"}},
		{"41 default state", caps41, ERR{Code: 1105, Message: "boom"}, ERR{Code: 1105, State: "HY000", Message: "boom"}},
		{"pre-4.1", 0, ERR{Code: 1105, State: "HY000", Message: "boom"}, ERR{Code: 1105, Message: "boom"}},
		{"empty message", caps41, ERR{Code: 1, State: "42000"}, ERR{Code: 1, State: "42000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, p := unframe(t, AppendERR(nil, 3, tt.in, tt.caps))
			got, err := DecodeERR(p, tt.caps)
			if err != nil || seq != 3 || got != tt.want {
				t.Fatalf("got %+v seq %d err %v, want %+v", got, seq, err, tt.want)
			}
		})
	}
	if _, err := DecodeERR([]byte{0xff, 1}, caps41); err == nil {
		t.Fatal("short ERR accepted")
	}
	// The message after a marker-less code is kept whole, even when short.
	got, err := DecodeERR([]byte{0xff, 0x10, 0x04, '#', 'a'}, caps41)
	if err != nil || got.Message != "#a" || got.State != "" {
		t.Fatalf("got %+v %v", got, err)
	}
}

func TestEOF(t *testing.T) {
	seq, p := unframe(t, AppendEOF(nil, 4, 2, StatusMoreResultsExists|StatusAutocommit))
	w, s, ok := DecodeEOF(p)
	if seq != 4 || !ok || w != 2 || s != StatusMoreResultsExists|StatusAutocommit {
		t.Fatalf("got seq %d w %d s %d ok %v", seq, w, s, ok)
	}
	if _, _, ok := DecodeEOF([]byte{0xfe}); !ok {
		t.Fatal("1-byte EOF refused")
	}
	for _, p := range [][]byte{nil, {0}, {0xfe, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, ok := DecodeEOF(p); ok {
			t.Errorf("% x accepted as EOF", p)
		}
	}
}

func TestSessionTracking(t *testing.T) {
	var ss []byte
	entry := func(typ byte, data []byte) {
		ss = append(ss, typ)
		ss = AppendLenEncInt(ss, uint64(len(data)))
		ss = append(ss, data...)
	}
	sysvar := func(k, v string) []byte { return AppendLenEncString(AppendLenEncString(nil, k), v) }
	entry(SessionTrackSystemVariables, sysvar("autocommit", "OFF"))
	entry(42, []byte("unknown entry type")) // skipped by its length
	entry(SessionTrackSchema, AppendLenEncString(nil, "shop"))
	entry(SessionTrackSystemVariables, sysvar("time_zone", "+00:00"))
	entry(SessionTrackSystemVariables, sysvar("autocommit", "ON"))
	entry(SessionTrackStateChange, AppendLenEncString(nil, "1"))
	entry(SessionTrackGTIDs, append([]byte{0}, AppendLenEncString(nil, "3e11fa47-71ca-11e1-9e33-c80aa9429562:23")...))

	vars := TrackedSystemVariables(ss)
	if !reflect.DeepEqual(vars, map[string]string{"autocommit": "ON", "time_zone": "+00:00"}) {
		t.Fatalf("vars = %v", vars)
	}
	if s, ok := TrackedSchema(ss); !ok || s != "shop" {
		t.Fatalf("schema = %q %v", s, ok)
	}
	if g, ok := TrackedGTIDs(ss); !ok || g != "3e11fa47-71ca-11e1-9e33-c80aa9429562:23" {
		t.Fatalf("gtids = %q %v", g, ok)
	}

	// MariaDB: last_gtid as a tracked system variable.
	var maria []byte
	maria = append(maria, SessionTrackSystemVariables)
	maria = AppendLenEncString(maria, string(sysvar("last_gtid", "0-1-7")))
	if g, ok := TrackedGTIDs(maria); !ok || g != "0-1-7" {
		t.Fatalf("mariadb gtid = %q %v", g, ok)
	}

	// Malformed input: whatever came before the damage is kept, nothing panics.
	broken := append(append([]byte(nil), ss[:3]...), 0xfe)
	TrackedSystemVariables(broken)
	if _, ok := TrackedSchema([]byte{1, 5, 1, 2}); ok {
		t.Fatal("truncated schema entry accepted")
	}
	if v := TrackedSystemVariables(nil); v != nil {
		t.Fatalf("nil state gave %v", v)
	}
}
