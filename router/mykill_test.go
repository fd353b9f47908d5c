package router

import "testing"

func TestMyKill(t *testing.T) {
	for _, tc := range []struct {
		q     string
		id    uint64
		query bool
		ok    bool
	}{
		{"KILL 42", 42, false, true},
		{"kill connection 7;", 7, false, true},
		{"KILL QUERY 9", 9, true, true},
		{"KILL HARD QUERY 9", 9, true, true},
		{"/* c */ KILL SOFT CONNECTION 3 -- x\n", 3, false, true},
		{"KILL QUERY ID 9", 0, false, false},
		{"KILL USER app", 0, false, false},
		{"KILL 1+1", 0, false, false},
		{"KILL 1; KILL 2", 0, false, false},
		{"KILL", 0, false, false},
		{"KILL 99999999999999999999999", 0, false, false},
		{"SELECT 1", 0, false, false},
	} {
		id, query, ok := MyKill(tc.q)
		if id != tc.id || query != tc.query || ok != tc.ok {
			t.Errorf("MyKill(%q) = %d %v %v; want %d %v %v", tc.q, id, query, ok, tc.id, tc.query, tc.ok)
		}
	}
}

func TestMyConnectionIDQuery(t *testing.T) {
	for _, tc := range []struct {
		q, col string
		ok     bool
	}{
		{"SELECT CONNECTION_ID()", "CONNECTION_ID()", true},
		{"select connection_id( );", "connection_id( )", true},
		{"SELECT CONNECTION_ID() AS id", "id", true},
		{"SELECT CONNECTION_ID() `my id`", "my id", true},
		{"SELECT CONNECTION_ID() AS 'x'", "x", true},
		{"SELECT CONNECTION_ID() FROM DUAL", "", false},
		{"SELECT CONNECTION_ID() + 1", "", false},
		{"SELECT CONNECTION_ID(), 1", "", false},
		{"SELECT CONNECTION_ID() AS", "", false},
		{"SELECT CONNECTION_ID(); SELECT 1", "", false},
	} {
		col, ok := MyConnectionIDQuery(tc.q)
		if col != tc.col || ok != tc.ok {
			t.Errorf("MyConnectionIDQuery(%q) = %q %v; want %q %v", tc.q, col, ok, tc.col, tc.ok)
		}
	}
}
