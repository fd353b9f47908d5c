package mywire

import "encoding/binary"

// maxColumns bounds the column count of a result set (the binary protocol counts columns and
// parameters in 16 bits).
const maxColumns = 1<<16 - 1

type trackState uint8

const (
	tsFirst             trackState = iota // OK | ERR | LOCAL INFILE | column count
	tsColumns                             // column definitions (t.left to go)
	tsColumnsEOF                          // EOF after the column definitions
	tsRows                                // rows until EOF / OK-as-EOF / ERR
	tsLocalInfile                         // the client sends the file; then the server's OK/ERR
	tsPrepareFirst                        // PREPARE_OK | ERR
	tsPrepareParams                       // parameter definitions (t.left to go)
	tsPrepareParamsEOF                    // EOF after them
	tsPrepareColumns                      // column definitions (t.left to go)
	tsPrepareColumnsEOF                   // EOF after them
	tsFieldList                           // column definitions until EOF / ERR
	tsOneString                           // COM_STATISTICS: one string packet
	tsSimple                              // OK | ERR | EOF
	tsDone
	tsBroken // a Feed failed: the stream is out of step
)

// Tracker follows the response to one command, packet by packet, to tell where it ends and
// which status flags the server reported. It never keeps a reference to a fed payload.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	cmd      byte
	caps     uint32
	state    trackState
	binary   bool   // rows are binary-protocol rows (COM_STMT_EXECUTE, COM_STMT_FETCH)
	left     uint64 // definitions still to come
	status   uint16
	seen     bool // an OK or EOF carried status flags
	ok       OK
	hasOK    bool
	okFed    bool // the last payload fed was an OK packet (also an OK in place of EOF)
	err      ERR
	hasErr   bool
	infile   string
	prepared bool
	stmtID   uint32
	columns  uint16
	params   uint16
	warnings uint16 // of the last OK or EOF
	rows     uint64 // rows of the last result set
	results  bool   // the last result was a result set (not an OK)
}

// NoResponse reports whether the server sends no response to cmd (COM_STMT_CLOSE,
// COM_STMT_SEND_LONG_DATA, COM_QUIT).
func NoResponse(cmd byte) bool {
	return cmd == ComStmtClose || cmd == ComStmtSendLongData || cmd == ComQuit
}

// NewTracker returns a tracker for the response to cmd; caps are the capabilities negotiated
// with the server (DEPRECATE_EOF, PROTOCOL_41 and SESSION_TRACK change the packets). For a
// command without a response (NoResponse) the tracker is done at once.
//
// Commands with an OK/ERR (or EOF) answer — COM_PING, COM_INIT_DB, COM_STMT_RESET,
// COM_RESET_CONNECTION, COM_SET_OPTION, and any other — are tracked as one packet. The
// authentication exchange of COM_CHANGE_USER and the event stream of COM_BINLOG_DUMP are
// not tracked: anything but OK, ERR or EOF is a FormatError.
func NewTracker(cmd byte, caps uint32) *Tracker {
	t := &Tracker{cmd: cmd, caps: caps}
	switch cmd {
	case ComQuery:
		t.state = tsFirst
	case ComStmtExecute:
		t.state, t.binary = tsFirst, true
	case ComStmtFetch:
		t.state, t.binary = tsRows, true
	case ComStmtPrepare:
		t.state = tsPrepareFirst
	case ComFieldList:
		t.state = tsFieldList
	case ComStatistics:
		t.state = tsOneString
	default:
		if NoResponse(cmd) {
			t.state = tsDone
		} else {
			t.state = tsSimple
		}
	}
	return t
}

// Done reports whether the response is complete.
func (t *Tracker) Done() bool { return t.state == tsDone }

// Status returns the status flags of the last OK or EOF seen (0 before any).
func (t *Tracker) Status() uint16 { return t.status }

// StatusSeen reports whether the response carried status flags at all (a PREPARE_OK, an ERR or
// a statistics string do not).
func (t *Tracker) StatusSeen() bool { return t.seen }

// Err returns the ERR that ended the response, or nil.
func (t *Tracker) Err() *ERR {
	if !t.hasErr {
		return nil
	}
	e := t.err
	return &e
}

// OK returns the last OK packet seen (including an OK in place of EOF), or nil.
func (t *Tracker) OK() *OK {
	if !t.hasOK {
		return nil
	}
	ok := t.ok
	return &ok
}

// FedOK reports whether the payload just fed was an OK packet (header 0x00, or 0xfe in place of
// an EOF under DEPRECATE_EOF); OK then returns it decoded.
func (t *Tracker) FedOK() bool { return t.okFed }

// Warnings returns the warning count of the last OK or EOF seen (0 before any).
func (t *Tracker) Warnings() uint16 { return t.warnings }

// Rows returns the number of rows of the last result set, and whether the last result was a
// result set at all (false: an OK, or no result yet).
func (t *Tracker) Rows() (rows uint64, resultSet bool) { return t.rows, t.results }

// Prepared returns the PREPARE_OK of a COM_STMT_PREPARE response.
func (t *Tracker) Prepared() (stmtID uint32, columns, params uint16, ok bool) {
	return t.stmtID, t.columns, t.params, t.prepared
}

// WantsLocalInfile reports whether the server asked for a LOAD DATA LOCAL file (and its name):
// the client must now send the file's packets and an empty packet, and the caller then feeds
// the server's final OK or ERR.
func (t *Tracker) WantsLocalInfile() (filename string, ok bool) {
	return t.infile, t.state == tsLocalInfile
}

// Feed advances the tracker by one payload of the response (joined, as PacketReader returns
// it). done is true when that payload ended the response. An error means the bytes do not fit
// the response (a FormatError); the tracker then refuses further payloads.
func (t *Tracker) Feed(payload []byte) (done bool, err error) {
	t.okFed = false
	if err := t.feed(payload); err != nil {
		t.state = tsBroken
		return false, err
	}
	return t.state == tsDone, nil
}

func (t *Tracker) feed(p []byte) error {
	switch t.state {
	case tsDone:
		return formatErrorf("packet after the end of the response to command 0x%02x", t.cmd)
	case tsBroken:
		return formatErrorf("response to command 0x%02x already failed", t.cmd)
	case tsOneString:
		if len(p) > 0 && p[0] == headerERR {
			return t.onERR(p)
		}
		t.state = tsDone
		return nil
	}
	if len(p) == 0 {
		return formatErrorf("empty packet in the response to command 0x%02x", t.cmd)
	}
	if p[0] == headerERR {
		// An ERR may end any response, also in the middle of a result set.
		return t.onERR(p)
	}
	switch t.state {
	case tsFirst:
		return t.first(p)
	case tsColumns:
		if t.left--; t.left == 0 {
			if t.caps&ClientDeprecateEOF != 0 {
				t.state = tsRows
			} else {
				t.state = tsColumnsEOF
			}
		}
	case tsColumnsEOF:
		if !isTerminator(p) {
			return formatErrorf("no EOF after the column definitions")
		}
		if err := t.onTerminator(p); err != nil {
			return err
		}
		if t.cmd == ComStmtExecute && t.status&StatusCursorExists != 0 {
			t.state = tsDone // rows come with COM_STMT_FETCH
		} else {
			t.state = tsRows
		}
	case tsRows:
		if isTerminator(p) {
			if err := t.onTerminator(p); err != nil {
				return err
			}
			t.endResult()
		} else if t.binary && p[0] != headerOK {
			return formatErrorf("binary row starts with 0x%02x", p[0])
		} else {
			t.rows++
		}
	case tsLocalInfile:
		if p[0] != headerOK {
			return formatErrorf("unexpected packet 0x%02x after LOCAL INFILE data", p[0])
		}
		return t.onOK(p)
	case tsPrepareFirst:
		return t.prepareOK(p)
	case tsPrepareParams:
		if t.left--; t.left == 0 {
			t.afterPrepareSection(tsPrepareParamsEOF)
		}
	case tsPrepareParamsEOF:
		if !isTerminator(p) {
			return formatErrorf("no EOF after the parameter definitions")
		}
		t.onEOF(p)
		t.startPrepareColumns()
	case tsPrepareColumns:
		if t.left--; t.left == 0 {
			t.afterPrepareSection(tsPrepareColumnsEOF)
		}
	case tsPrepareColumnsEOF:
		if !isTerminator(p) {
			return formatErrorf("no EOF after the column definitions")
		}
		t.onEOF(p)
		t.state = tsDone
	case tsFieldList:
		if isTerminator(p) {
			t.state = tsDone
			return t.onTerminator(p)
		}
	case tsSimple:
		switch {
		case p[0] == headerOK:
			if err := t.onOK(p); err != nil {
				return err
			}
			t.state = tsDone
		case isTerminator(p):
			t.state = tsDone
			return t.onTerminator(p)
		default:
			return formatErrorf("unexpected packet 0x%02x in the response to command 0x%02x", p[0], t.cmd)
		}
	default:
		panic("BUG: mywire: unknown tracker state")
	}
	return nil
}

// first handles the first packet of a result: OK, LOCAL INFILE request or column count.
func (t *Tracker) first(p []byte) error {
	switch p[0] {
	case headerOK:
		return t.onOK(p)
	case headerLocalInfile:
		t.infile = string(p[1:])
		t.state = tsLocalInfile
		return nil
	}
	n, _, ok := ReadLenEncInt(p)
	if !ok || n == 0 || n > maxColumns {
		return formatErrorf("bad column count in the response to command 0x%02x", t.cmd)
	}
	t.left, t.state = n, tsColumns
	t.rows, t.results = 0, true
	return nil
}

func (t *Tracker) prepareOK(p []byte) error {
	if p[0] != headerOK || len(p) < 12 {
		return formatErrorf("bad COM_STMT_PREPARE response")
	}
	t.prepared = true
	t.stmtID = binary.LittleEndian.Uint32(p[1:5])
	t.columns = binary.LittleEndian.Uint16(p[5:7])
	t.params = binary.LittleEndian.Uint16(p[7:9])
	if t.params > 0 {
		t.left, t.state = uint64(t.params), tsPrepareParams
		return nil
	}
	t.startPrepareColumns()
	return nil
}

func (t *Tracker) afterPrepareSection(eofState trackState) {
	switch {
	case t.caps&ClientDeprecateEOF == 0:
		t.state = eofState
	case eofState == tsPrepareParamsEOF:
		t.startPrepareColumns()
	default:
		t.state = tsDone
	}
}

func (t *Tracker) startPrepareColumns() {
	if t.columns > 0 {
		t.left, t.state = uint64(t.columns), tsPrepareColumns
	} else {
		t.state = tsDone
	}
}

// isTerminator tells an EOF or OK-as-EOF (header 0xfe, shorter than a full packet part) from
// a text row whose first value has an 8-byte length (header 0xfe, at least 2^24 bytes long).
func isTerminator(p []byte) bool { return p[0] == headerEOF && len(p) < MaxPayload }

// onTerminator records an EOF, or an OK-as-EOF when DEPRECATE_EOF was negotiated.
func (t *Tracker) onTerminator(p []byte) error {
	if t.caps&ClientDeprecateEOF != 0 {
		if ok, err := DecodeOK(p, t.caps); err == nil {
			t.ok, t.hasOK, t.okFed, t.status, t.seen = ok, true, true, ok.Status, true
			t.warnings = ok.Warnings
			return nil
		}
	}
	if _, _, ok := DecodeEOF(p); !ok {
		return formatErrorf("malformed EOF packet of %d bytes", len(p))
	}
	t.onEOF(p)
	return nil
}

func (t *Tracker) onEOF(p []byte) {
	if w, status, ok := DecodeEOF(p); ok {
		t.status, t.seen, t.warnings = status, true, w
	}
}

// onOK records an OK that ends a result and moves on to the next result or the end.
func (t *Tracker) onOK(p []byte) error {
	ok, err := DecodeOK(p, t.caps)
	if err != nil {
		return err
	}
	t.ok, t.hasOK, t.okFed, t.status, t.seen = ok, true, true, ok.Status, true
	t.warnings, t.results = ok.Warnings, false
	t.endResult()
	return nil
}

func (t *Tracker) endResult() {
	if t.status&StatusMoreResultsExists != 0 && (t.cmd == ComQuery || t.cmd == ComStmtExecute) {
		t.state = tsFirst
	} else {
		t.state = tsDone
	}
}

func (t *Tracker) onERR(p []byte) error {
	e, err := DecodeERR(p, t.caps)
	if err != nil {
		return err
	}
	t.err, t.hasErr, t.state = e, true, tsDone
	return nil
}
