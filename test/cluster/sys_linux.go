//go:build linux

package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// rootSupported: on Linux a root caller runs the servers as the postgres user.
const rootSupported = true

// sysProcAttr runs a child as u (nil: as the caller) in its own process
// group, so a terminal's Ctrl-C reaches only the Go process, which then
// shuts the servers down in order. Pdeathsig kills the child if the Go
// process dies first; Go sets it after switching credentials, so the
// kernel does not clear it. The kernel sends it when the OS thread that
// forked the child exits, which in Go happens only to a goroutine that
// exits while locked to its thread: do not start nodes from such goroutines.
func sysProcAttr(u *serverUser) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}
	}
	return a
}

// checkTraversable fails unless u can reach dir: every ancestor of dir must
// grant u search (x) permission.
func checkTraversable(dir string, u *serverUser) error {
	if u == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		okUser := ok && int(st.Uid) == u.uid && perm&0o100 != 0
		okGroup := ok && int(st.Gid) == u.gid && perm&0o010 != 0
		if !okUser && !okGroup && perm&0o001 == 0 {
			return fmt.Errorf("cluster: user %s cannot reach %s: directory %s (mode %v) is not "+
				"searchable by it; use a BaseDir under /tmp or leave BaseDir empty", u.name, dir, d, perm)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// childPIDs lists the children of pid (the postmaster's backends and
// auxiliary processes), read from /proc.
func childPIDs(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(p); ok && ppid == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// procStat returns the parent pid and state letter of pid from /proc/pid/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// pidGone reports whether pid has exited. A zombie counts as gone: it holds
// no shared memory, and PID 1 in a container may never reap it.
func pidGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	_, state, ok := procStat(pid)
	return !ok || state == 'Z' || state == 'X'
}

// killPID sends SIGKILL to pid, ignoring a process that is already gone.
func killPID(pid int) {
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
