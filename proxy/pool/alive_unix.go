//go:build linux || darwin || freebsd || netbsd || openbsd

package pool

import (
	"net"
	"syscall"
	"unsafe"
)

// peerClosed reports whether the server has closed an idle connection (or sent something on it,
// which an idle database connection only does on its way out, such as a FATAL "terminating
// connection"). One non-blocking MSG_PEEK recv: nothing is consumed, nothing waits. Sockets that
// cannot be inspected (TLS, pipes) count as open.
func peerClosed(c net.Conn) bool {
	if pc, ok := c.(interface{ PeerClosed() bool }); ok {
		return pc.PeerClosed() // netio.Conn: the same peek without allocating
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// A raw call (no scheduler bookkeeping, see package netio): it never blocks.
		_, _, rerr := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		// EAGAIN: nothing to read, the connection is open. Anything else — EOF (n == 0),
		// unexpected data (n > 0) or a socket error — means it is going or gone.
		closed = !(rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR)
		return true // never wait for readability
	})
	return closed || err != nil
}
