//go:build linux

package netio

import (
	"sync/atomic"
	"testing"
	"time"
)

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A parked connection resumes exactly once: when its peer writes, or when woken, whichever
// comes first; a resumed session can park again.
func TestIdlerResumesOnce(t *testing.T) {
	var i Idler
	c, srv := pair(t)
	var resumed atomic.Int32
	resume := func() { resumed.Add(1) }
	if !i.Park(c, resume) {
		t.Fatal("Park refused a TCP connection")
	}
	if i.Park(c, resume) {
		t.Fatal("Park accepted the same connection twice")
	}
	if i.Parked() != 1 {
		t.Fatalf("Parked = %d, want 1", i.Parked())
	}
	srv.Write([]byte("x"))
	await(t, "resume on data", func() bool { return resumed.Load() == 1 })
	if i.Wake(c) {
		t.Fatal("Wake of a connection that already resumed reported it parked")
	}
	buf := make([]byte, 1)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("Read after resume = %d, %v: the data must still be there", n, err)
	}
	// Park again, then wake it explicitly: one more resume, and data arriving later adds none.
	if !i.Park(c, resume) {
		t.Fatal("Park refused a connection that had resumed")
	}
	if !i.Wake(c) {
		t.Fatal("Wake did not find the parked connection")
	}
	await(t, "resume on Wake", func() bool { return resumed.Load() == 2 })
	srv.Write([]byte("y"))
	time.Sleep(50 * time.Millisecond) // (nothing to await: asserting that nothing more happens)
	if n := resumed.Load(); n != 2 || i.Parked() != 0 {
		t.Fatalf("resumed %d times, %d parked; want 2 and 0", n, i.Parked())
	}
}

// A peer that closes a parked connection resumes it (its session then reads EOF and ends).
func TestIdlerResumesOnClose(t *testing.T) {
	var i Idler
	c, srv := pair(t)
	done := make(chan struct{})
	if !i.Park(c, func() { close(done) }) {
		t.Fatal("Park refused a TCP connection")
	}
	srv.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a parked connection whose peer closed did not resume")
	}
}
