package pgwire

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Startup-phase request codes (the first 4 bytes after the length of an untyped packet).
const (
	CodeSSLRequest    = 80877103
	CodeGSSENCRequest = 80877104
	CodeCancelRequest = 80877102
	ProtocolV3        = 3 << 16
)

// MaxStartupPacket mirrors PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
const MaxStartupPacket = 10000

// ReadStartupPacket reads one untyped startup-phase packet (StartupMessage, SSLRequest,
// GSSENCRequest or CancelRequest) straight from r, which must not be buffered ahead (a TLS
// upgrade may follow). It returns the request code and the whole packet body after the length.
func ReadStartupPacket(r io.Reader) (code uint32, pkt []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:])))
	if n < 8 || n > MaxStartupPacket {
		return 0, nil, &FormatError{Msg: fmt.Sprintf("invalid length of startup packet: %d", n)}
	}
	pkt = make([]byte, n-4)
	if _, err := io.ReadFull(r, pkt); err != nil {
		return 0, nil, eofUnexpected(err)
	}
	return binary.BigEndian.Uint32(pkt), pkt, nil
}

// DecodeStartup decodes a protocol-3 StartupMessage packet into its parameters.
func DecodeStartup(pkt []byte) (map[string]string, error) {
	var sm pgproto3.StartupMessage
	// pgproto3 only accepts the exact versions it knows; accept any 3.x minor here and let the
	// caller negotiate down.
	tmp := append([]byte(nil), pkt...)
	binary.BigEndian.PutUint32(tmp, pgproto3.ProtocolVersion30)
	if err := sm.Decode(tmp); err != nil {
		return nil, &FormatError{Msg: err.Error()}
	}
	if sm.Parameters["user"] == "" {
		return nil, &FormatError{Msg: "no PostgreSQL user name specified in startup packet"}
	}
	return sm.Parameters, nil
}

// Error severities.
const (
	SevError = "ERROR"
	SevFatal = "FATAL"
)

// AppendError appends an ErrorResponse frame.
func AppendError(dst []byte, severity, code, msg string) []byte {
	e := pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity, Code: code, Message: msg}
	out, err := e.Encode(dst)
	if err != nil {
		panic("BUG: encoding ErrorResponse: " + err.Error())
	}
	return out
}

// AppendReady appends a ReadyForQuery frame with the given transaction status.
func AppendReady(dst []byte, status byte) []byte {
	return append(dst, 'Z', 0, 0, 0, 5, status)
}
