//go:build !linux

package chaos

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }

func signalTree(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
