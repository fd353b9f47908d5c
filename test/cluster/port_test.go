package cluster

import (
	"net"
	"strconv"
	"testing"
)

// FreePort stays out of the ephemeral range, never repeats itself, and returns bindable ports.
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	elo, ehi := ephemeralRange()
	seen := map[int]bool{}
	for range 200 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if lo, hi := portRange(); hi-lo >= 1000 && p >= elo && p <= ehi {
			t.Fatalf("port %d is in the ephemeral range %d-%d", p, elo, ehi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p, _ := FreePort()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("the port FreePort returned cannot be bound: %v", err)
	}
	l.Close()
}

// A port held by a listener is never handed out. (On a machine with no room outside the
// ephemeral range FreePort asks the kernel, which never hands out a bound port either.)
func TestFreePortSkipsBoundPorts(t *testing.T) {
	lo, _ := portRange()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	bound := map[int]bool{}
	for p := lo; p < lo+200; p++ {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			held = append(held, l)
			bound[p] = true
		}
	}
	for range 2000 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if bound[p] {
			t.Fatalf("port %d is bound by this test and was handed out", p)
		}
	}
}

// The range FreePort draws from lies outside the ephemeral range, on its larger side.
func TestRangeOutside(t *testing.T) {
	for _, tt := range []struct{ elo, ehi, lo, hi int }{
		{32768, 60999, minPort, 32767}, // Linux default: below
		{49152, 65535, minPort, 49151}, // IANA (macOS, BSD)
		{10001, 20000, 20001, 65535},   // a low range: above
	} {
		if lo, hi := rangeOutside(tt.elo, tt.ehi); lo != tt.lo || hi != tt.hi {
			t.Errorf("ephemeral %d-%d: %d-%d, want %d-%d", tt.elo, tt.ehi, lo, hi, tt.lo, tt.hi)
		}
	}
}
