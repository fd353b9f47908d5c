package cluster

import (
	"testing"
	"time"
)

// Eventually polls cond every 20 ms until it holds, and fails the test when it still does not
// after d, with the last error cond returned.
func Eventually(t testing.TB, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v (last error: %v)", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
