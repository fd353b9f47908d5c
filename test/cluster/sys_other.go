//go:build !linux

package cluster

import (
	"os"
	"syscall"
)

// rootSupported: elsewhere than Linux the servers run as the caller only, so
// a root caller gets a clear error instead of postgres' refusal.
const rootSupported = false

// sysProcAttr returns nil: no user switch, and no Pdeathsig outside Linux.
// A test binary that crashes may leave postmasters behind here; a
// postmaster shuts itself down about a minute after its data directory
// (and so its lock file) is removed.
func sysProcAttr(*serverUser) *syscall.SysProcAttr { return nil }

// checkTraversable has nothing to check when the servers run as the caller.
func checkTraversable(string, *serverUser) error { return nil }

// childPIDs cannot list children portably; Kill then does not wait for the
// backends of a killed postmaster.
func childPIDs(int) []int { return nil }

// pidGone reports whether pid has exited, as far as os.FindProcess can tell.
func pidGone(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	return p.Signal(syscall.Signal(0)) != nil
}

// killPID sends SIGKILL to pid, ignoring a process that is already gone.
func killPID(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
