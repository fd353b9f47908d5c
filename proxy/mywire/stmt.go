package mywire

import "encoding/binary"

// hasStmtID reports whether payloads of cmd carry a statement id at payload[1:5].
func hasStmtID(cmd byte) bool {
	switch cmd {
	case ComStmtExecute, ComStmtClose, ComStmtReset, ComStmtSendLongData, ComStmtFetch:
		return true
	}
	return false
}

// StmtID returns the statement id of a COM_STMT_EXECUTE, _CLOSE, _RESET, _SEND_LONG_DATA or
// _FETCH payload (command byte included). ok is false for other commands or a short payload.
func StmtID(payload []byte) (id uint32, ok bool) {
	if len(payload) < 5 || !hasStmtID(payload[0]) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(payload[1:5]), true
}

// SetStmtID rewrites the statement id of such a payload in place (to map a client's id to a
// backend's). It does nothing when StmtID would report !ok.
func SetStmtID(payload []byte, id uint32) {
	if len(payload) < 5 || !hasStmtID(payload[0]) {
		return
	}
	binary.LittleEndian.PutUint32(payload[1:5], id)
}

// AppendCommand appends a framed command packet (sequence id 0): cmd followed by arg, split
// into parts when it is long. Use it for the statements baton injects.
func AppendCommand(dst []byte, cmd byte, arg []byte) []byte {
	dst, start := beginPacket(dst, 0)
	dst = append(dst, cmd)
	dst = append(dst, arg...)
	return endPacket(dst, start)
}

// AppendQuery appends a framed COM_QUERY packet (sequence id 0) for sql.
func AppendQuery(dst []byte, sql string) []byte {
	dst, start := beginPacket(dst, 0)
	dst = append(dst, ComQuery)
	dst = append(dst, sql...)
	return endPacket(dst, start)
}

// AppendStmtClose appends a framed COM_STMT_CLOSE packet (sequence id 0) for statement id.
func AppendStmtClose(dst []byte, id uint32) []byte {
	return binary.LittleEndian.AppendUint32(append(dst, 5, 0, 0, 0, ComStmtClose), id)
}
