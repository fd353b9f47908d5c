package mywire

import "encoding/binary"

// ReadLenEncInt decodes the length-encoded integer at the front of b and returns it with the
// number of bytes it took. ok is false when b is empty or cut short, and when it starts with
// 0xfb (NULL in a text row) or 0xff (not an integer).
func ReadLenEncInt(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch c := b[0]; {
	case c < 0xfb:
		return uint64(c), 1, true
	case c == 0xfc:
		if len(b) < 3 {
			return 0, 0, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:3])), 3, true
	case c == 0xfd:
		if len(b) < 4 {
			return 0, 0, false
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, true
	case c == 0xfe:
		if len(b) < 9 {
			return 0, 0, false
		}
		return binary.LittleEndian.Uint64(b[1:9]), 9, true
	default:
		return 0, 0, false
	}
}

// AppendLenEncInt appends v as a length-encoded integer.
func AppendLenEncInt(dst []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(dst, byte(v))
	case v <= 0xffff:
		return append(dst, 0xfc, byte(v), byte(v>>8))
	case v <= 0xffffff:
		return append(dst, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	default:
		return binary.LittleEndian.AppendUint64(append(dst, 0xfe), v)
	}
}

// ReadLenEncString decodes the length-encoded string at the front of b and returns it with the
// number of bytes it took (prefix included). s aliases b. ok is false when the prefix is not a
// length (see ReadLenEncInt) or the string runs past the end of b.
func ReadLenEncString(b []byte) (s []byte, n int, ok bool) {
	l, n, ok := ReadLenEncInt(b)
	if !ok || l > uint64(len(b)-n) {
		return nil, 0, false
	}
	end := n + int(l)
	return b[n:end:end], end, true
}

// AppendLenEncString appends s with a length-encoded length prefix.
func AppendLenEncString(dst []byte, s string) []byte {
	return append(AppendLenEncInt(dst, uint64(len(s))), s...)
}

// cursor reads fields off the front of a payload. A read past the end sets bad and returns
// zero values, so a decoder reads every field and checks bad once.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) u8() byte {
	if len(c.b) < 1 {
		c.bad = true
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) u16() uint16 {
	if len(c.b) < 2 {
		c.bad = true
		c.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint16(c.b)
	c.b = c.b[2:]
	return v
}

func (c *cursor) u32() uint32 {
	if len(c.b) < 4 {
		c.bad = true
		c.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint32(c.b)
	c.b = c.b[4:]
	return v
}

func (c *cursor) bytes(n int) []byte {
	if n < 0 || len(c.b) < n {
		c.bad = true
		c.b = nil
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) lenencInt() uint64 {
	v, n, ok := ReadLenEncInt(c.b)
	if !ok {
		c.bad = true
		c.b = nil
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) lenencBytes() []byte {
	v, n, ok := ReadLenEncString(c.b)
	if !ok {
		c.bad = true
		c.b = nil
		return nil
	}
	c.b = c.b[n:]
	return v
}

// nul reads a NUL-terminated string; a missing NUL is an error.
func (c *cursor) nul() []byte {
	for i, ch := range c.b {
		if ch == 0 {
			v := c.b[:i:i]
			c.b = c.b[i+1:]
			return v
		}
	}
	c.bad = true
	c.b = nil
	return nil
}

// nulOrEnd reads a string terminated by NUL or by the end of the payload (clients and servers
// differ on whether the last string of a packet carries its NUL).
func (c *cursor) nulOrEnd() []byte {
	for i, ch := range c.b {
		if ch == 0 {
			v := c.b[:i:i]
			c.b = c.b[i+1:]
			return v
		}
	}
	v := c.b
	c.b = nil
	return v
}

func (c *cursor) rest() []byte {
	v := c.b
	c.b = nil
	return v
}

func (c *cursor) empty() bool { return len(c.b) == 0 }
