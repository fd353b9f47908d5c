//go:build !linux

package etcdtest

import "syscall"

// sysProcAttr puts a member in its own process group. Without Pdeathsig (Linux only), a test
// binary that crashes leaves its members running.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
