package mywire

import (
	"encoding/binary"
	"fmt"
)

// OK is an OK packet (header 0x00, or 0xfe when it ends a result set under DEPRECATE_EOF).
type OK struct {
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
	Info         string
	// SessionState is the raw session-state information (CLIENT_SESSION_TRACK and
	// StatusSessionStateChanged); read it with TrackedSystemVariables, TrackedSchema and
	// TrackedGTIDs. DecodeOK returns a copy that does not alias the payload.
	SessionState []byte
}

// DecodeOK decodes an OK packet payload. caps are the negotiated capabilities: they decide
// which fields are present, and whether a 0xfe header (OK in place of EOF) is an OK.
func DecodeOK(payload []byte, caps uint32) (OK, error) {
	var ok OK
	if len(payload) == 0 {
		return ok, formatErrorf("empty OK packet")
	}
	switch payload[0] {
	case headerOK:
	case headerEOF:
		if caps&ClientDeprecateEOF == 0 || len(payload) >= MaxPayload {
			return ok, formatErrorf("0xfe packet is not an OK packet without DEPRECATE_EOF")
		}
	default:
		return ok, formatErrorf("OK packet starts with 0x%02x", payload[0])
	}
	c := cursor{b: payload[1:]}
	ok.AffectedRows = c.lenencInt()
	ok.LastInsertID = c.lenencInt()
	switch {
	case caps&ClientProtocol41 != 0:
		ok.Status = c.u16()
		ok.Warnings = c.u16()
	case caps&ClientTransactions != 0:
		ok.Status = c.u16()
	}
	if c.bad {
		return OK{}, formatErrorf("truncated OK packet")
	}
	if caps&ClientSessionTrack == 0 {
		ok.Info = string(c.rest())
		return ok, nil
	}
	if !c.empty() {
		ok.Info = string(c.lenencBytes())
	}
	if ok.Status&StatusSessionStateChanged != 0 && !c.empty() {
		ok.SessionState = append([]byte(nil), c.lenencBytes()...)
	}
	if c.bad {
		return OK{}, formatErrorf("truncated OK packet info")
	}
	return ok, nil
}

// AppendOK appends a framed OK packet (header 0x00) with sequence id seq, encoded for caps.
func AppendOK(dst []byte, seq byte, ok OK, caps uint32) []byte {
	return appendOK(dst, seq, headerOK, ok, caps)
}

// AppendOKAsEOF appends a framed OK packet with the 0xfe header that ends a result set (rows,
// or column definitions of a cursor) when DEPRECATE_EOF was negotiated.
func AppendOKAsEOF(dst []byte, seq byte, ok OK, caps uint32) []byte {
	return appendOK(dst, seq, headerEOF, ok, caps)
}

// AppendOKPayload appends the payload (not framed) of an OK packet encoded for caps, with the
// 0xfe header of an OK in place of EOF when asEOF. A proxy uses it to re-encode a server's OK
// for a client that negotiated other capabilities (no CLIENT_SESSION_TRACK: no session state).
func AppendOKPayload(dst []byte, ok OK, caps uint32, asEOF bool) []byte {
	header := headerOK
	if asEOF {
		header = headerEOF
	}
	return appendOKPayload(dst, header, ok, caps)
}

func appendOK(dst []byte, seq, header byte, ok OK, caps uint32) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendOKPayload(dst, header, ok, caps)
	return endPacket(dst, start)
}

func appendOKPayload(dst []byte, header byte, ok OK, caps uint32) []byte {
	dst = append(dst, header)
	dst = AppendLenEncInt(dst, ok.AffectedRows)
	dst = AppendLenEncInt(dst, ok.LastInsertID)
	switch {
	case caps&ClientProtocol41 != 0:
		dst = binary.LittleEndian.AppendUint16(dst, ok.Status)
		dst = binary.LittleEndian.AppendUint16(dst, ok.Warnings)
	case caps&ClientTransactions != 0:
		dst = binary.LittleEndian.AppendUint16(dst, ok.Status)
	}
	if caps&ClientSessionTrack != 0 {
		changed := ok.Status&StatusSessionStateChanged != 0
		if changed || ok.Info != "" {
			dst = AppendLenEncString(dst, ok.Info)
		}
		if changed {
			dst = AppendLenEncInt(dst, uint64(len(ok.SessionState)))
			dst = append(dst, ok.SessionState...)
		}
	} else {
		dst = append(dst, ok.Info...)
	}
	return dst
}

// ERR is an ERR packet.
type ERR struct {
	Code    uint16
	State   string // SQLSTATE, 5 characters; empty when the server sent none
	Message string
}

// DecodeERR decodes an ERR packet payload. The '#'+SQLSTATE marker is read whenever present
// (servers send it before the capabilities are known, too).
func DecodeERR(payload []byte, caps uint32) (ERR, error) {
	_ = caps
	if len(payload) < 3 || payload[0] != headerERR {
		return ERR{}, formatErrorf("not an ERR packet")
	}
	e := ERR{Code: binary.LittleEndian.Uint16(payload[1:3])}
	rest := payload[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State = string(rest[1:6])
		rest = rest[6:]
	}
	e.Message = string(rest)
	return e, nil
}

// AppendERR appends a framed ERR packet; with PROTOCOL_41 it carries '#'+SQLSTATE (HY000
// when e.State is not 5 characters long).
func AppendERR(dst []byte, seq byte, e ERR, caps uint32) []byte {
	dst, start := beginPacket(dst, seq)
	dst = append(dst, headerERR)
	dst = binary.LittleEndian.AppendUint16(dst, e.Code)
	if caps&ClientProtocol41 != 0 {
		state := e.State
		if len(state) != 5 {
			state = "HY000"
		}
		dst = append(dst, '#')
		dst = append(dst, state...)
	}
	dst = append(dst, e.Message...)
	return endPacket(dst, start)
}

// AppendEOF appends a framed (protocol 4.1) EOF packet.
func AppendEOF(dst []byte, seq byte, warnings, status uint16) []byte {
	return append(dst, 5, 0, 0, seq, headerEOF,
		byte(warnings), byte(warnings>>8), byte(status), byte(status>>8))
}

// DecodeEOF decodes an EOF packet: header 0xfe and fewer than 9 bytes. A 1-byte EOF (before
// protocol 4.1) reports zero warnings and status.
func DecodeEOF(payload []byte) (warnings, status uint16, ok bool) {
	if len(payload) == 0 || payload[0] != headerEOF || len(payload) >= 9 {
		return 0, 0, false
	}
	if len(payload) >= 5 {
		warnings = binary.LittleEndian.Uint16(payload[1:3])
		status = binary.LittleEndian.Uint16(payload[3:5])
	}
	return warnings, status, true
}

// ServerError is an ERR packet a server sent where success was expected (Connect).
type ServerError struct {
	ERR
}

func (e *ServerError) Error() string {
	if e.State == "" {
		return fmt.Sprintf("mywire: server error %d: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("mywire: server error %d (%s): %s", e.Code, e.State, e.Message)
}
