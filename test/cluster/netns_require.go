package cluster

import (
	"fmt"
	"os"
	"testing"
)

// RequireNetns lets a partition test run only where network namespaces work. Where they do not,
// it fails when the test must run — in CI (CI set) and as root, where the only thing missing can
// be an install step (iproute2, which test/scripts/deps.sh installs) — and otherwise (an
// ordinary user on a laptop) prints a clear line and skips.
func RequireNetns(t testing.TB) {
	t.Helper()
	err := NetnsAvailable()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" || os.Geteuid() == 0 {
		t.Fatalf("partition tests must run here: %v (run as root with iproute2 installed: test/scripts/deps.sh test)", err)
	}
	fmt.Printf("skipped: %s: %v\n", t.Name(), err)
	t.Skipf("skipped: %v (partition tests need root and iproute2)", err)
}
