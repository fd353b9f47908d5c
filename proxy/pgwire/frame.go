package pgwire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame errors. They are classified by behaviour: a FormatError means the peer broke the
// protocol and the connection must be closed after telling it why.
var (
	ErrMessageTooLarge = errors.New("pgwire: message exceeds the configured maximum size")
	ErrBadLength       = errors.New("pgwire: invalid message length")
)

// FormatError reports a malformed message from a peer.
type FormatError struct {
	Type byte
	Msg  string
}

func (e *FormatError) Error() string {
	if e.Type == 0 {
		return "pgwire: malformed message: " + e.Msg
	}
	return fmt.Sprintf("pgwire: malformed %q message: %s", e.Type, e.Msg)
}

// MsgReader reads whole regular (typed) protocol messages from a buffered stream.
//
// Next returns the complete frame (type byte, 4-byte length, body). The slice aliases the
// reader's buffer or a scratch buffer and is valid only until the next call to Next.
type MsgReader struct {
	r       *bufio.Reader
	max     int // maximum frame body length
	scratch []byte
}

// NewMsgReader reads frames from r; bodies over max bytes are refused with ErrMessageTooLarge.
func NewMsgReader(r *bufio.Reader, max int) *MsgReader {
	return &MsgReader{r: r, max: max}
}

// Reader returns the buffered reader frames are read from.
func (m *MsgReader) Reader() *bufio.Reader { return m.r }

// SetReader makes the reader read from r (nil while nothing may be read: an idle session gives
// its buffer back).
func (m *MsgReader) SetReader(r *bufio.Reader) { m.r = r }

// Next reads the next frame.
func (m *MsgReader) Next() ([]byte, error) {
	hdr, err := m.r.Peek(5)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[1:5])))
	if n < 4 {
		return nil, &FormatError{Type: hdr[0], Msg: fmt.Sprintf("length %d is below 4", n)}
	}
	if n-4 > m.max {
		return nil, fmt.Errorf("%w: %q message of %d bytes (limit %d)", ErrMessageTooLarge, hdr[0], n-4, m.max)
	}
	total := n + 1
	if total <= m.r.Size() {
		b, err := m.r.Peek(total)
		if err != nil {
			return nil, eofUnexpected(err)
		}
		m.r.Discard(total)
		return b, nil
	}
	if cap(m.scratch) < total {
		m.scratch = make([]byte, total)
	}
	b := m.scratch[:total]
	if _, err := io.ReadFull(m.r, b); err != nil {
		return nil, eofUnexpected(err)
	}
	if cap(m.scratch) > 1<<20 {
		m.scratch = nil // do not pin huge buffers to idle sessions
	}
	return b, nil
}

// Buffered reports how many bytes are ready without a read from the socket.
func (m *MsgReader) Buffered() int { return m.r.Buffered() }

func eofUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Body returns the message body of a frame.
func Body(frame []byte) []byte { return frame[5:] }

// CString splits a NUL-terminated string off the front of b.
func CString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

// AppendFrame appends a frame with the given type and body.
func AppendFrame(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(body)+4))
	return append(dst, body...)
}

// AppendQuery appends a simple-protocol Query frame.
func AppendQuery(dst []byte, sql string) []byte {
	dst = append(dst, 'Q', 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(sql)+5))
	dst = append(dst, sql...)
	return append(dst, 0)
}

// AppendCloseStmt appends a Close frame for a prepared statement.
func AppendCloseStmt(dst []byte, name string) []byte {
	dst = append(dst, 'C', 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(name)+6))
	dst = append(dst, 'S')
	dst = append(dst, name...)
	return append(dst, 0)
}

// ParseMsg decodes a Parse body: statement name and query text.
func ParseMsg(b []byte) (name, query string, err error) {
	name, rest, ok := CString(b)
	if !ok {
		return "", "", &FormatError{Type: 'P', Msg: "unterminated statement name"}
	}
	query, rest, ok = CString(rest)
	if !ok {
		return "", "", &FormatError{Type: 'P', Msg: "unterminated query"}
	}
	if len(rest) < 2 {
		return "", "", &FormatError{Type: 'P', Msg: "missing parameter count"}
	}
	np := int(binary.BigEndian.Uint16(rest))
	if len(rest)-2 != 4*np {
		return "", "", &FormatError{Type: 'P', Msg: "parameter type list does not match its count"}
	}
	return name, query, nil
}

// BindMsg decodes the portal and statement names of a Bind body.
func BindMsg(b []byte) (portal, stmt string, err error) {
	portal, rest, ok := CString(b)
	if !ok {
		return "", "", &FormatError{Type: 'B', Msg: "unterminated portal name"}
	}
	stmt, rest, ok = CString(rest)
	if !ok {
		return "", "", &FormatError{Type: 'B', Msg: "unterminated statement name"}
	}
	if len(rest) < 6 { // format count, param count, result format count
		return "", "", &FormatError{Type: 'B', Msg: "truncated"}
	}
	return portal, stmt, nil
}

// DescribeMsg decodes Describe and Close bodies: 'S' or 'P' and a name.
func DescribeMsg(typ byte, b []byte) (kind byte, name string, err error) {
	if len(b) < 2 || (b[0] != 'S' && b[0] != 'P') {
		return 0, "", &FormatError{Type: typ, Msg: "target must be 'S' or 'P'"}
	}
	name, rest, ok := CString(b[1:])
	if !ok || len(rest) != 0 {
		return 0, "", &FormatError{Type: typ, Msg: "bad name"}
	}
	return b[0], name, nil
}

// QueryMsg decodes a simple Query body.
func QueryMsg(b []byte) (string, error) {
	q, rest, ok := CString(b)
	if !ok || len(rest) != 0 {
		return "", &FormatError{Type: 'Q', Msg: "query string is not NUL-terminated"}
	}
	return q, nil
}

// ErrorCode extracts the SQLSTATE of an ErrorResponse or NoticeResponse body.
func ErrorCode(b []byte) (code string) { return ErrorField(b, 'C') }

// ErrorField extracts one field (e.g. 'C' SQLSTATE, 'V' non-localized severity, 'S' severity,
// 'M' message) of an ErrorResponse or NoticeResponse body ("" when absent).
func ErrorField(b []byte, field byte) string {
	for len(b) > 0 && b[0] != 0 {
		f := b[0]
		v, rest, ok := CString(b[1:])
		if !ok {
			return ""
		}
		if f == field {
			return v
		}
		b = rest
	}
	return ""
}

// ErrorFatal reports whether an ErrorResponse body has severity FATAL or PANIC: the server
// closes the connection after sending it. (ERROR with a class-08 SQLSTATE does not close it.)
func ErrorFatal(b []byte) bool {
	sev := ErrorField(b, 'V') // non-localized, PostgreSQL ≥ 9.6
	if sev == "" {
		sev = ErrorField(b, 'S')
	}
	return sev == SevFatal || sev == "PANIC"
}

// Peek1 blocks until at least one byte is readable (for idle waits on a connection).
func (m *MsgReader) Peek1() ([]byte, error) { return m.r.Peek(1) }
