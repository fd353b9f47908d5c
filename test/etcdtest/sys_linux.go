//go:build linux

package etcdtest

import "syscall"

// sysProcAttr puts a member in its own process group (a terminal's Ctrl-C reaches only the Go
// process, which then stops the members) and kills it if the Go process dies first. The kernel
// sends Pdeathsig when the OS thread that forked the child exits, which in Go happens only to a
// goroutine that exits while locked to its thread: do not start members from such goroutines.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
