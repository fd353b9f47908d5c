package mytest

// A minimal MySQL client written from the protocol documentation (not with baton's own codec),
// so that tests can send what go-sql-driver never would: broken handshakes, wrong sequence ids,
// oversized packets, unknown commands, COM_INIT_DB.

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// Capability flags and commands the raw client uses.
const (
	capLongPassword   = 0x00000001
	capConnectWithDB  = 0x00000008
	capProtocol41     = 0x00000200
	capTransactions   = 0x00002000
	capSecureConn     = 0x00008000
	capMultiResults   = 0x00020000
	capPluginAuth     = 0x00080000
	statusMoreResults = 0x0008

	wireComQuit      = 0x01
	wireComInitDB    = 0x02
	wireComQuery     = 0x03
	wireComPing      = 0x0e
	wireComPrepare   = 0x16
	wireComExecute   = 0x17
	wireComStmtClose = 0x19
)

// wireConn is one raw client connection.
type wireConn struct {
	t      testing.TB
	c      net.Conn
	salt   []byte // the greeting's 20-byte scramble
	caps   uint32 // the server's capabilities
	plugin string // the greeting's auth plugin
}

// wireErr is a decoded ERR packet.
type wireErr struct {
	Code  uint16
	State string
	Msg   string
}

func (e *wireErr) Error() string { return fmt.Sprintf("ERR %d (%s): %s", e.Code, e.State, e.Msg) }

// wireDial connects to addr and reads the server greeting (protocol 10).
func wireDial(t testing.TB, addr string) *wireConn {
	t.Helper()
	c := dialTest(t, addr)
	w := &wireConn{t: t, c: c}
	p, seq, err := w.read()
	if err != nil {
		t.Fatalf("reading the greeting: %v", err)
	}
	if seq != 0 || len(p) == 0 || p[0] != 10 {
		t.Fatalf("greeting: seq %d, payload %q; want protocol 10 with sequence id 0", seq, p)
	}
	if err := w.parseGreeting(p); err != nil {
		t.Fatalf("greeting %q: %v", p, err)
	}
	return w
}

func (w *wireConn) parseGreeting(p []byte) error {
	i := bytes.IndexByte(p[1:], 0)
	if i < 0 {
		return errors.New("no end of the server version")
	}
	i += 2 // protocol byte, version, NUL
	if len(p) < i+4+8+1+2+1+2+2+1+10 {
		return errors.New("greeting too short")
	}
	i += 4 // connection id
	salt := append([]byte(nil), p[i:i+8]...)
	i += 8 + 1 // salt part 1, filler
	caps := uint32(binary.LittleEndian.Uint16(p[i:]))
	i += 2 + 1 + 2 // caps low, charset, status
	caps |= uint32(binary.LittleEndian.Uint16(p[i:])) << 16
	i += 2
	authLen := int(p[i])
	i += 1 + 10
	if caps&capSecureConn != 0 {
		n := max(13, authLen-8)
		if len(p) < i+n {
			return errors.New("salt part 2 truncated")
		}
		salt = append(salt, bytes.TrimRight(p[i:i+n], "\x00")...)
		i += n
	}
	if caps&capPluginAuth != 0 {
		if j := bytes.IndexByte(p[i:], 0); j >= 0 {
			w.plugin = string(p[i : i+j])
		} else {
			w.plugin = string(p[i:])
		}
	}
	if len(salt) != 20 {
		return fmt.Errorf("salt of %d bytes; want 20", len(salt))
	}
	w.salt, w.caps = salt, caps
	return nil
}

// read reads one packet (no multi-packet joining: the tests' packets are small).
func (w *wireConn) read() ([]byte, byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(w.c, h[:]); err != nil {
		return nil, 0, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p := make([]byte, n)
	if _, err := io.ReadFull(w.c, p); err != nil {
		return nil, 0, err
	}
	return p, h[3], nil
}

// mustRead reads one packet or fails the test.
func (w *wireConn) mustRead(what string) ([]byte, byte) {
	w.t.Helper()
	p, seq, err := w.read()
	if err != nil {
		w.t.Fatalf("%s: reading: %v", what, err)
	}
	return p, seq
}

// write frames payload with sequence id seq and sends it.
func (w *wireConn) write(seq byte, payload []byte) error {
	out := make([]byte, 4, 4+len(payload))
	out[0], out[1], out[2], out[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), seq
	_, err := w.c.Write(append(out, payload...))
	return err
}

func (w *wireConn) mustWrite(seq byte, payload []byte) {
	w.t.Helper()
	if err := w.write(seq, payload); err != nil {
		w.t.Fatalf("writing: %v", err)
	}
}

// nativeScramble is mysql_native_password: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))).
func nativeScramble(password string, salt []byte) []byte {
	if password == "" {
		return nil
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(salt)
	h.Write(h2[:])
	h3 := h.Sum(nil)
	for i := range h3 {
		h3[i] ^= h1[i]
	}
	return h3
}

// sha2Scramble is the caching_sha2_password fast-path response:
// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + salt).
func sha2Scramble(password string, salt []byte) []byte {
	d1 := sha256.Sum256([]byte(password))
	d2 := sha256.Sum256(d1[:])
	h := sha256.New()
	h.Write(d2[:])
	h.Write(salt)
	d3 := h.Sum(nil)
	for i := range d3 {
		d3[i] ^= d1[i]
	}
	return d3
}

// handshakeResponse builds a HandshakeResponse41.
func handshakeResponse(user, db, plugin string, auth []byte) []byte {
	caps := uint32(capLongPassword | capProtocol41 | capTransactions | capSecureConn | capMultiResults | capPluginAuth)
	if db != "" {
		caps |= capConnectWithDB
	}
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45) // utf8mb4_general_ci
	p = append(p, make([]byte, 23)...)
	p = append(append(p, user...), 0)
	p = append(append(p, byte(len(auth))), auth...)
	if db != "" {
		p = append(append(p, db...), 0)
	}
	return append(append(p, plugin...), 0)
}

// wireLogin dials addr and logs in as the app user with mysql_native_password.
func wireLogin(t testing.TB, addr string) *wireConn {
	t.Helper()
	w := wireDial(t, addr)
	w.mustWrite(1, handshakeResponse(my.Opts.AppUser, my.Opts.AppDB, "mysql_native_password", nativeScramble(my.Opts.AppPassword, w.salt)))
	p, seq := w.mustRead("login")
	if len(p) == 0 || p[0] != 0x00 || seq != 2 {
		t.Fatalf("login answered %q (seq %d); want OK with sequence id 2 (%v)", p, seq, decodeErr(p))
	}
	return w
}

// decodeErr decodes an ERR packet; nil if p is not one.
func decodeErr(p []byte) *wireErr {
	if len(p) < 3 || p[0] != 0xff {
		return nil
	}
	e := &wireErr{Code: binary.LittleEndian.Uint16(p[1:3])}
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State, rest = string(rest[1:6]), rest[6:]
	}
	e.Msg = string(rest)
	return e
}

// expectErr reads one packet and requires it to be ERR code with sequence id seq.
func (w *wireConn) expectErr(what string, seq byte, code uint16) *wireErr {
	w.t.Helper()
	p, got := w.mustRead(what)
	e := decodeErr(p)
	if e == nil || e.Code != code {
		w.t.Fatalf("%s: got %q; want ERR %d", what, p, code)
	}
	if got != seq {
		w.t.Fatalf("%s: ERR %d with sequence id %d; want %d", what, code, got, seq)
	}
	return e
}

// expectClosed requires the server to close the connection within d; it may send at most an
// ERR packet first, which is returned.
func (w *wireConn) expectClosed(what string, d time.Duration) *wireErr {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(d))
	var e *wireErr
	for {
		p, _, err := w.read()
		if err == nil {
			if e != nil || decodeErr(p) == nil {
				w.t.Fatalf("%s: the server sent %q; want at most one ERR packet, then the connection closed", what, p)
			}
			e = decodeErr(p)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			w.t.Fatalf("%s: the connection is still open after %v", what, d)
		}
		return e // EOF or reset: closed
	}
}

// lenenc reads a length-encoded integer.
func lenenc(p []byte) (v uint64, n int, null bool) {
	if len(p) == 0 {
		return 0, 0, false
	}
	switch b := p[0]; {
	case b < 0xfb:
		return uint64(b), 1, false
	case b == 0xfb:
		return 0, 1, true
	case b == 0xfc && len(p) >= 3:
		return uint64(binary.LittleEndian.Uint16(p[1:])), 3, false
	case b == 0xfd && len(p) >= 4:
		return uint64(p[1]) | uint64(p[2])<<8 | uint64(p[3])<<16, 4, false
	case b == 0xfe && len(p) >= 9:
		return binary.LittleEndian.Uint64(p[1:]), 9, false
	}
	return 0, 0, false
}

func isEOF(p []byte) bool { return len(p) > 0 && p[0] == 0xfe && len(p) < 9 }

// query runs a text query (COM_QUERY, sequence id 0) and returns the rows of its first result
// set as strings ("NULL" for NULL); later result sets are read and dropped.
func (w *wireConn) query(q string) ([][]string, *wireErr) {
	w.t.Helper()
	w.mustWrite(0, append([]byte{wireComQuery}, q...))
	return w.readResult(q, 1)
}

// readResult reads a text result set (classic EOF framing), checking sequence ids from seq.
func (w *wireConn) readResult(what string, seq byte) ([][]string, *wireErr) {
	w.t.Helper()
	var rows [][]string
	first := true
	for {
		next := func() []byte {
			p, got := w.mustRead(what)
			if got != seq {
				w.t.Fatalf("%s: packet %q has sequence id %d; want %d", what, p, got, seq)
			}
			seq++
			return p
		}
		p := next()
		if e := decodeErr(p); e != nil {
			return rows, e
		}
		if p[0] == 0x00 { // OK: no result set
			st := okStatus(p)
			if st&statusMoreResults != 0 {
				continue
			}
			return rows, nil
		}
		cols, _, _ := lenenc(p)
		for i := uint64(0); i < cols; i++ {
			next()
		}
		if p := next(); !isEOF(p) {
			w.t.Fatalf("%s: %q after the column definitions; want EOF", what, p)
		}
		var status uint16
		for {
			p := next()
			if isEOF(p) {
				if len(p) >= 5 {
					status = binary.LittleEndian.Uint16(p[3:])
				}
				break
			}
			if e := decodeErr(p); e != nil {
				return rows, e
			}
			var row []string
			for off := 0; off < len(p); {
				n, k, null := lenenc(p[off:])
				if k == 0 {
					w.t.Fatalf("%s: malformed row %q", what, p)
				}
				off += k
				if null {
					row = append(row, "NULL")
					continue
				}
				row = append(row, string(p[off:off+int(n)]))
				off += int(n)
			}
			if first {
				rows = append(rows, row)
			}
		}
		first = false
		if status&statusMoreResults == 0 {
			return rows, nil
		}
		// The next result set continues the same sequence.
	}
}

// okStatus returns the status flags of an OK packet.
func okStatus(p []byte) uint16 {
	off := 1
	for i := 0; i < 2; i++ { // affected rows, last insert id
		_, n, _ := lenenc(p[off:])
		if n == 0 {
			return 0
		}
		off += n
	}
	if len(p) < off+2 {
		return 0
	}
	return binary.LittleEndian.Uint16(p[off:])
}

// mustQuery runs q and requires success.
func (w *wireConn) mustQuery(q string) [][]string {
	w.t.Helper()
	rows, e := w.query(q)
	if e != nil {
		w.t.Fatalf("%s: %v", q, e)
	}
	return rows
}

// ping sends COM_PING and requires OK.
func (w *wireConn) ping() {
	w.t.Helper()
	w.mustWrite(0, []byte{wireComPing})
	p, seq := w.mustRead("COM_PING")
	if len(p) == 0 || p[0] != 0x00 || seq != 1 {
		w.t.Fatalf("COM_PING answered %q (seq %d); want OK with sequence id 1", p, seq)
	}
}

// portOf runs SELECT @@port on the raw connection.
func (w *wireConn) portOf() int {
	w.t.Helper()
	rows := w.mustQuery("SELECT @@port")
	if len(rows) != 1 || len(rows[0]) != 1 {
		w.t.Fatalf("SELECT @@port returned %q", rows)
	}
	port, err := strconv.Atoi(rows[0][0])
	if err != nil {
		w.t.Fatal(err)
	}
	return port
}
