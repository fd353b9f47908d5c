package pgproxy

import (
	"bufio"
	"io"
	"sync"
)

// clientWriter buffers writes to a client and holds its buffer only between the first Write and
// the next Flush, so that thousands of idle sessions hold no write buffer. It is used by one
// goroutine at a time (the client loop, or the relay while the loop waits).
type clientWriter struct {
	w  io.Writer
	bw *bufio.Writer
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

func (c *clientWriter) Write(p []byte) (int, error) {
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(c.w)
	}
	return c.bw.Write(p)
}

// Flush writes what is buffered and gives the buffer back.
func (c *clientWriter) Flush() error {
	if c.bw == nil {
		return nil
	}
	err := c.bw.Flush()
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	c.bw = nil
	return err
}
