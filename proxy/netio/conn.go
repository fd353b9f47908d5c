package netio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a net.Conn whose Read and Write make raw read(2)/write(2) calls on the non-blocking
// socket, waiting for readiness in the runtime's netpoller (see the package comment). Every
// other method is the wrapped connection's. Reads and writes allocate nothing: the callbacks
// handed to the raw connection are method values made once, and each direction keeps its
// arguments in the Conn under its own lock.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool

	peekClosed bool
	peekFn     func(uintptr) bool
}

// Wrap returns c as a *Conn when c is a socket this package can drive (*net.TCPConn,
// *net.UnixConn), and c itself otherwise (TLS, pipes).
func Wrap(c net.Conn) net.Conn {
	if !supported {
		return c
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return c
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return c
	}
	nc := &Conn{Conn: c, rc: rc}
	nc.readFn, nc.writeFn, nc.peekFn = nc.read, nc.write, nc.peek
	return nc
}

// SyscallConn gives the raw connection.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Unwrap returns the wrapped connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// Read reads what the socket holds into p, waiting in the netpoller when it holds nothing.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rbuf = nil
	c.rmu.Unlock()
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, c.opError("read", errno)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) read(fd uintptr) bool {
	for {
		r, e := rawRead(fd, c.rbuf)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for readability
		}
		if e == 0 {
			c.rn = r
		}
		c.rerr = e
		return true
	}
}

// maxWrite bounds one write(2): a raw call cannot be preempted, and copying a few hundred KiB
// into the socket buffer is the longest it should hold its thread.
const maxWrite = 256 << 10

// Write writes all of p, waiting in the netpoller while the socket's send buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werr
	c.wbuf = nil
	c.wmu.Unlock()
	if err != nil {
		return n, err
	}
	if errno != 0 {
		return n, c.opError("write", errno)
	}
	return n, nil
}

func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		r, e := rawWrite(fd, c.wbuf[c.wn:min(len(c.wbuf), c.wn+maxWrite)])
		switch e {
		case 0:
			c.wn += r
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for writability
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// PeerClosed reports whether the peer has closed an idle connection, or sent something on it
// (which an idle database connection only does on its way out, such as a FATAL): one
// non-blocking MSG_PEEK, nothing consumed, nothing waits. A connection being read counts as
// open (it is not idle; its reader learns of a close itself).
func (c *Conn) PeerClosed() bool {
	if !c.rmu.TryLock() {
		return false
	}
	defer c.rmu.Unlock()
	c.peekClosed = false
	if err := c.rc.Read(c.peekFn); err != nil {
		return true
	}
	return c.peekClosed
}

func (c *Conn) peek(fd uintptr) bool {
	// EAGAIN: nothing to read, the connection is open. Anything else — EOF (n == 0),
	// unexpected data (n > 0) or a socket error — means it is going or gone.
	e := rawPeek(fd)
	c.peekClosed = !(e == syscall.EAGAIN || e == syscall.EINTR)
	return true // never wait for readability
}

// opError wraps errno as net.Conn's own methods would, so callers' checks (net.Error,
// errors.Is(err, syscall.ECONNRESET), …) see the same error.
func (c *Conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
