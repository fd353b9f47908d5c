package mywire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Framing errors. Every error that comes from a peer's bytes is ErrPacketTooLarge, a
// *FormatError, or io.ErrUnexpectedEOF (a packet cut short); after any of them the stream is
// out of step and the connection must be closed.
var (
	ErrPacketTooLarge = errors.New("mywire: packet exceeds the configured maximum size")
)

// FormatError reports bytes from a peer that do not follow the protocol.
type FormatError struct {
	Msg string
}

func (e *FormatError) Error() string { return "mywire: malformed packet: " + e.Msg }

func formatErrorf(format string, args ...any) error {
	return &FormatError{Msg: fmt.Sprintf(format, args...)}
}

// DefaultMaxPayload is the joined-payload limit used when a constructor is given a limit ≤ 0:
// 1 GiB, the ceiling of MySQL's max_allowed_packet.
const DefaultMaxPayload = 1 << 30

// scratchKeep is the largest scratch buffer a PacketReader keeps between packets.
const scratchKeep = 1 << 20

// PacketReader reads logical packets (parts joined) from a buffered stream.
//
// A PacketReader is not safe for concurrent use.
type PacketReader struct {
	r       *bufio.Reader
	max     int
	scratch []byte
}

// NewPacketReader reads packets from r. maxPayload bounds the joined payload of one logical
// packet; a larger one is refused with ErrPacketTooLarge before its body is read (the caller
// closes the connection). maxPayload ≤ 0 means DefaultMaxPayload.
func NewPacketReader(r *bufio.Reader, maxPayload int) *PacketReader {
	p := &PacketReader{r: r}
	p.SetMaxPayload(maxPayload)
	return p
}

// SetMaxPayload changes the joined-payload limit (≤ 0 means DefaultMaxPayload), for example
// from a small limit during authentication to the session's max_allowed_packet.
func (p *PacketReader) SetMaxPayload(n int) {
	if n <= 0 {
		n = DefaultMaxPayload
	}
	p.max = n
}

// Next reads the next logical packet. It returns the joined payload and the sequence id of its
// last part. Parts of one logical packet must carry consecutive sequence ids.
//
// The payload aliases the reader's buffer or a scratch buffer: it is valid only until the next
// call to Next. A clean end of stream between packets is io.EOF; a stream that ends inside a
// packet is io.ErrUnexpectedEOF.
func (p *PacketReader) Next() (payload []byte, seq byte, err error) {
	if cap(p.scratch) > scratchKeep {
		p.scratch = nil // do not pin a huge buffer to an idle connection
	}
	hdr, err := p.r.Peek(4)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return nil, 0, io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	seq = hdr[3]
	if n > p.max {
		return nil, seq, fmt.Errorf("%w: %d bytes (limit %d)", ErrPacketTooLarge, n, p.max)
	}
	if n < MaxPayload && 4+n <= p.r.Size() {
		// Fast path: the whole single-part packet fits in the buffer.
		b, err := p.r.Peek(4 + n)
		if err != nil {
			return nil, seq, unexpectedEOF(err)
		}
		p.r.Discard(4 + n)
		return b[4:], seq, nil
	}
	buf := p.scratch[:0]
	total := 0
	for part := 0; ; part++ {
		if part > 0 {
			hdr, err = p.r.Peek(4)
			if err != nil {
				return nil, seq, unexpectedEOF(err)
			}
			n = int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
			if hdr[3] != seq+1 {
				return nil, seq, formatErrorf("packet part with sequence id %d after %d", hdr[3], seq)
			}
			seq = hdr[3]
			if total+n > p.max {
				return nil, seq, fmt.Errorf("%w: more than %d bytes (limit %d)", ErrPacketTooLarge, total+n, p.max)
			}
		}
		p.r.Discard(4)
		buf = slices.Grow(buf, n)[:total+n]
		if _, err := io.ReadFull(p.r, buf[total:]); err != nil {
			return nil, seq, unexpectedEOF(err)
		}
		total += n
		if n < MaxPayload {
			break
		}
	}
	p.scratch = buf
	return buf, seq, nil
}

// Buffered reports how many bytes can be read without a read from the underlying stream.
func (p *PacketReader) Buffered() int { return p.r.Buffered() }

// ReadPacket reads one logical packet straight from r without reading ahead: use it for the
// packets that may precede a TLS upgrade (the server's greeting, the client's SSLRequest or
// HandshakeResponse). maxPayload bounds the joined payload (≤ 0 means DefaultMaxPayload).
// The payload is freshly allocated.
func ReadPacket(r io.Reader, maxPayload int) (payload []byte, seq byte, err error) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	var hdr [4]byte
	for part := 0; ; part++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if part > 0 {
				err = unexpectedEOF(err)
			}
			return nil, seq, err
		}
		if part > 0 && hdr[3] != seq+1 {
			return nil, seq, formatErrorf("packet part with sequence id %d after %d", hdr[3], seq)
		}
		seq = hdr[3]
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		if len(payload)+n > maxPayload {
			return nil, seq, fmt.Errorf("%w: more than %d bytes (limit %d)", ErrPacketTooLarge, len(payload)+n, maxPayload)
		}
		total := len(payload)
		payload = slices.Grow(payload, n)[:total+n]
		if _, err := io.ReadFull(r, payload[total:]); err != nil {
			return nil, seq, unexpectedEOF(err)
		}
		if n < MaxPayload {
			return payload, seq, nil
		}
	}
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendPacket appends payload framed as one logical packet starting with sequence id seq: a
// payload of MaxPayload bytes or more is split into MaxPayload-byte parts plus a final shorter
// (possibly empty) part, each with the next sequence id. It returns the sequence id that
// follows the last part.
func AppendPacket(dst []byte, seq byte, payload []byte) (out []byte, nextSeq byte) {
	for {
		n := min(len(payload), MaxPayload)
		dst = append(dst, byte(n), byte(n>>8), byte(n>>16), seq)
		dst = append(dst, payload[:n]...)
		seq++
		payload = payload[n:]
		if n < MaxPayload {
			return dst, seq
		}
	}
}

// beginPacket reserves a header in dst for a packet whose payload the caller appends next;
// endPacket fills it in (splitting the payload when it is too long for one part).
func beginPacket(dst []byte, seq byte) (out []byte, start int) {
	return append(dst, 0, 0, 0, seq), len(dst)
}

func endPacket(dst []byte, start int) []byte {
	n := len(dst) - start - 4
	if n < MaxPayload {
		dst[start], dst[start+1], dst[start+2] = byte(n), byte(n>>8), byte(n>>16)
		return dst
	}
	payload := slices.Clone(dst[start+4:])
	out, _ := AppendPacket(dst[:start], dst[start+3], payload)
	return out
}

// IsERRPacket reports whether p begins with an ERR packet (header, then 0xff).
func IsERRPacket(p []byte) bool { return len(p) > 4 && p[4] == headerERR }
