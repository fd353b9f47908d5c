package mywire

import (
	"bytes"
	"testing"
)

func sysVarEntry(name, value string) []byte {
	data := AppendLenEncString(AppendLenEncString(nil, name), value)
	return AppendLenEncString([]byte{SessionTrackSystemVariables}, string(data))
}

func TestStripTrackedVariable(t *testing.T) {
	tz := sysVarEntry("time_zone", "+03:00")
	gtid := sysVarEntry("last_gtid", "0-1-42")
	schema := AppendLenEncString([]byte{SessionTrackSchema}, string(AppendLenEncString(nil, "db")))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []byte
		removed bool
	}{
		{"empty", nil, nil, false},
		{"only gtid", gtid, []byte{}, true},
		{"gtid first", cat(gtid, tz), tz, true},
		{"gtid middle", cat(tz, gtid, schema), cat(tz, schema), true},
		{"gtid twice", cat(gtid, tz, gtid), tz, true},
		{"other vars", cat(tz, schema), cat(tz, schema), false},
		{"upper case", sysVarEntry("LAST_GTID", "0-1-1"), []byte{}, true},
		{"malformed tail kept", cat(gtid, []byte{0, 0xfc}), []byte{0, 0xfc}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, removed := StripTrackedVariable(tc.in, "last_gtid")
			if removed != tc.removed || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x %v; want %x %v", got, removed, tc.want, tc.removed)
			}
		})
	}
}

func TestAppendOKPayloadRoundTrip(t *testing.T) {
	ss := sysVarEntry("time_zone", "+03:00")
	for _, tc := range []struct {
		name  string
		caps  uint32
		ok    OK
		asEOF bool
	}{
		{"plain", ClientProtocol41, OK{AffectedRows: 2, LastInsertID: 7, Status: StatusAutocommit, Warnings: 1, Info: "Records: 2"}, false},
		{"tracked", ClientProtocol41 | ClientSessionTrack, OK{AffectedRows: 1, Status: StatusAutocommit | StatusSessionStateChanged, SessionState: ss}, false},
		{"as EOF", ClientProtocol41 | ClientDeprecateEOF | ClientSessionTrack, OK{Status: StatusAutocommit}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := AppendOKPayload(nil, tc.ok, tc.caps, tc.asEOF)
			if (p[0] == headerEOF) != tc.asEOF {
				t.Fatalf("header 0x%02x", p[0])
			}
			got, err := DecodeOK(p, tc.caps)
			if err != nil {
				t.Fatal(err)
			}
			if got.AffectedRows != tc.ok.AffectedRows || got.LastInsertID != tc.ok.LastInsertID || got.Status != tc.ok.Status ||
				got.Warnings != tc.ok.Warnings || got.Info != tc.ok.Info || !bytes.Equal(got.SessionState, tc.ok.SessionState) {
				t.Fatalf("got %+v; want %+v", got, tc.ok)
			}
		})
	}
}
