//go:build !linux

package netio

import "syscall"

// supported: only Linux takes the raw path; elsewhere Wrap returns the connection unchanged.
const supported = false

func rawRead(fd uintptr, p []byte) (int, syscall.Errno)  { return 0, syscall.ENOSYS }
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }
func rawPeek(fd uintptr) syscall.Errno                   { return syscall.ENOSYS }
