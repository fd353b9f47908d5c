//go:build linux

package netio

import (
	"syscall"
	"unsafe"
)

const supported = true

// rawRead is read(2) without the scheduler's syscall bookkeeping: the socket is non-blocking,
// so the call returns at once (EAGAIN when empty).
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// rawWrite is write(2) likewise (EAGAIN when the send buffer is full).
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// rawPeek is a one-byte recv(MSG_PEEK|MSG_DONTWAIT): 0 when something (or EOF) is there.
func rawPeek(fd uintptr) syscall.Errno {
	var b [1]byte
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e
}
