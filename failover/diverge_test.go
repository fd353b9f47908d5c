package failover

import (
	"testing"

	"github.com/baton-proxy/baton/health"
)

func TestParsePGHistory(t *testing.T) {
	h, err := parsePGHistory("1\t0/3000158\tno recovery target specified\n\n2\t0/5000A0\tno recovery target specified\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := pgForkPoint(h, 1); got != "0/3000158" {
		t.Fatalf("fork of 1: %q", got)
	}
	if got := pgForkPoint(h, 2); got != "0/5000A0" {
		t.Fatalf("fork of 2: %q", got)
	}
	if got := pgForkPoint(h, 3); got != "" {
		t.Fatalf("fork of 3: %q", got)
	}
	for _, bad := range []string{"x\t0/1\tr", "1\tzz\tr", "1"} {
		if _, err := parsePGHistory(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMariaDiverged(t *testing.T) {
	for _, tc := range []struct {
		have, state string
		diverged    bool
	}{
		// The old primary wrote 0-1-24…27 while cut off; the new primary (server 2) went on
		// from 0-1-23. By position alone 27 < 3890 looks covered.
		{"0-1-27", "0-1-23,0-2-3890", true},
		{"0-1-23", "0-1-23,0-2-3890", false},
		{"0-2-3000", "0-1-23,0-2-3890", false},
		{"0-1-20", "0-1-23", false},
		{"0-3-5", "0-1-23,0-2-3890", true}, // a server the primary never heard of
		{"0-1-10", "0-2-10", true},         // the same number written by another server
		{"0-1-5,1-1-9", "0-1-5", true},     // a domain the primary lacks
		{"0-1-5,1-1-9", "0-1-5,1-1-12", false},
		{"", "0-1-23", false},
	} {
		have, err := health.ParseMariaPos(tc.have)
		if err != nil {
			t.Fatal(err)
		}
		st, err := parseMariaState(tc.state)
		if err != nil {
			t.Fatal(err)
		}
		why, got := mariaDiverged(have, st)
		if got != tc.diverged {
			t.Errorf("have %q, primary's binlog state %q: diverged %v (%s), want %v", tc.have, tc.state, got, why, tc.diverged)
		}
	}
	if _, err := parseMariaState("0-1"); err == nil {
		t.Error("parseMariaState(\"0-1\"): no error")
	}
}
