//go:build !linux

package chaos

import (
	"syscall"
	"time"
)

func childAttr() *syscall.SysProcAttr { return nil }

func signalTree(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

func waitStopped(pid int, d time.Duration) bool { time.Sleep(10 * time.Millisecond); return true }
