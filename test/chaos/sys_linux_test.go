//go:build linux

package chaos

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childAttr makes a baton subprocess die with the test binary.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// signalTree sends sig to pid and to every process whose parent is pid (a postmaster and its
// backends: stopping only the postmaster would leave its existing sessions serving).
func signalTree(pid int, sig syscall.Signal) error {
	pids := []int{pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, child)
		}
	}
	var first error
	for _, p := range pids {
		if err := syscall.Kill(p, sig); err != nil && p == pid && first == nil {
			first = err
		}
	}
	return first
}

// waitStopped waits (at most d) until every thread of pid is stopped (state T): a SIGSTOP takes
// effect a moment after kill returns, and a write may still be acknowledged in between.
func waitStopped(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			return false
		}
		all := len(ents) > 0
		for _, e := range ents {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			s := string(data)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(f) == 0 || (f[0] != "T" && f[0] != "t") {
				all = false
				break
			}
		}
		if all {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}
