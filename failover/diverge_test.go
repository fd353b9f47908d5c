package failover

import "testing"

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
