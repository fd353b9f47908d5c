package myproxy

import (
	"testing"

	"github.com/baton-proxy/baton/proxy/mywire"
)

func TestSQLLiteral(t *testing.T) {
	for _, tc := range []struct {
		v    []byte
		typ  byte
		want string
	}{
		{nil, mywire.TypeLongLong, "NULL"},
		{[]byte(""), mywire.TypeNull, "NULL"},
		{[]byte("42"), mywire.TypeLongLong, "42"},
		{[]byte("-1.5"), mywire.TypeDouble, "-1.5"},
		{[]byte("1; DROP TABLE t"), mywire.TypeLongLong, "CONVERT(X'313b2044524f50205441424c452074' USING utf8mb4)"},
		{[]byte("it's"), mywire.TypeVarStr, "CONVERT(X'69742773' USING utf8mb4)"},
	} {
		if got := sqlLiteral(tc.v, tc.typ); got != tc.want {
			t.Errorf("sqlLiteral(%q, %#x) = %s; want %s", tc.v, tc.typ, got, tc.want)
		}
	}
}

func TestTrackSet(t *testing.T) {
	for _, tc := range []struct{ def, want string }{
		{"autocommit,time_zone", "SET SESSION session_track_system_variables = 'autocommit,time_zone,last_gtid'"},
		{"", "SET SESSION session_track_system_variables = 'last_gtid'"},
		{"*", "-"},
		{"time_zone, LAST_GTID", "-"},
		{`a'b\c`, `SET SESSION session_track_system_variables = 'a''b\\c,last_gtid'`},
	} {
		if got := trackSet(tc.def); got != tc.want {
			t.Errorf("trackSet(%q) = %s; want %s", tc.def, got, tc.want)
		}
	}
}

func TestMentions(t *testing.T) {
	for _, tc := range []struct {
		q, w string
		want bool
	}{
		{"KILL 1", "kill", true},
		{"/* x */ Kill query 1", "kill", true},
		{"SELECT 1", "kill", false},
		{"ki", "kill", false},
		{"select CONNECTION_ID()", "connection_id", true},
		{"SELECT '" + string(make([]byte, maxAnsweredLen)) + "' KILL", "kill", false},
	} {
		if got := mentions(tc.q, tc.w); got != tc.want {
			t.Errorf("mentions(%.20q, %q) = %v", tc.q, tc.w, got)
		}
	}
}
