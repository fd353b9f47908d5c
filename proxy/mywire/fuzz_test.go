package mywire

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"
)

var fuzzCommands = []byte{
	ComQuery, ComStmtExecute, ComStmtFetch, ComStmtPrepare, ComFieldList, ComStatistics,
	ComPing, ComSetOption, ComInitDB, ComStmtClose, ComChangeUser, ComResetConnection,
}

// fuzzCaps spreads the bits of b over the capabilities that change packet layouts.
func fuzzCaps(b byte) uint32 {
	bits := []uint32{ClientProtocol41, ClientTransactions, ClientSessionTrack, ClientDeprecateEOF,
		ClientPluginAuth, ClientSecureConnection, ClientPluginAuthLenencClientData, ClientConnectAttrs}
	var caps uint32
	for i, bit := range bits {
		if b&(1<<i) != 0 {
			caps |= bit
		}
	}
	return caps
}

var (
	fuzzKeyOnce sync.Once
	fuzzKey     *rsa.PrivateKey
)

// FuzzPackets feeds arbitrary bytes to everything that reads a peer's bytes: the framing
// (PacketReader, ReadPacket), every decoder, the session-state readers, Tracker.Feed, the server
// side of authentication (ServerAuth.Run with the bytes as the client's packets) and the client
// side (Connect with the bytes as the server's). None may panic; frames stay within the limit;
// decoded OK/ERR/HandshakeResponse values survive a round trip.
//
// Input layout: data[0] picks the command, data[1] the capabilities, the rest is the stream.
func FuzzPackets(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	fuzzKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			f.Fatal(err)
		}
		fuzzKey = k
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		cmd := fuzzCommands[int(data[0])%len(fuzzCommands)]
		caps := fuzzCaps(data[1])
		stream := data[2:]
		const max = 1 << 16

		tr := NewTracker(cmd, caps)
		r := NewPacketReader(bufio.NewReaderSize(bytes.NewReader(stream), 16), max)
		for i := 0; i < 10000; i++ {
			p, _, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrPacketTooLarge) && !isFormatError(err) {
					t.Fatalf("unclassified error %T: %v", err, err)
				}
				break
			}
			if len(p) > max {
				t.Fatalf("payload of %d bytes over the limit", len(p))
			}
			fuzzDecoders(t, p, caps)
			if tr.Done() || tr.state == tsBroken {
				tr = NewTracker(fuzzCommands[i%len(fuzzCommands)], caps)
			}
			done, err := tr.Feed(p)
			if err != nil && !isFormatError(err) {
				t.Fatalf("Feed: unclassified error %v", err)
			}
			if done != tr.Done() {
				t.Fatal("Feed and Done disagree")
			}
			tr.Status()
			tr.Err()
			tr.OK()
			tr.Prepared()
			tr.WantsLocalInfile()
		}
		if p, _, err := ReadPacket(bytes.NewReader(stream), max); err == nil && len(p) > max {
			t.Fatalf("ReadPacket: %d bytes over the limit", len(p))
		}
		fuzzServerAuth(t, data[1], stream)
		fuzzConnect(data[1], stream)
	})
}

func fuzzDecoders(t *testing.T, p []byte, caps uint32) {
	if ok, err := DecodeOK(p, caps); err == nil {
		again, err := DecodeOK(appendOK(nil, 0, p[0], ok, caps)[4:], caps)
		if err != nil || !reflect.DeepEqual(again, ok) {
			t.Fatalf("OK round trip: %+v -> %+v (%v)", ok, again, err)
		}
		TrackedGTIDs(ok.SessionState)
		TrackedSchema(ok.SessionState)
		TrackedSystemVariables(ok.SessionState)
	}
	if e, err := DecodeERR(p, caps); err == nil && e.State != "" {
		again, err := DecodeERR(AppendERR(nil, 0, e, ClientProtocol41)[4:], caps)
		if err != nil || again != e {
			t.Fatalf("ERR round trip: %+v -> %+v (%v)", e, again, err)
		}
	}
	DecodeEOF(p)
	if h, err := DecodeHandshake(p); err == nil {
		h.Append(nil)
	}
	if hr, err := DecodeHandshakeResponse(p); err == nil {
		again, err := DecodeHandshakeResponse(AppendHandshakeResponse(nil, hr))
		if err != nil || !reflect.DeepEqual(again, hr) {
			t.Fatalf("HandshakeResponse round trip:\n%+v\n%+v (%v)", hr, again, err)
		}
	}
	IsSSLRequest(p)
	TrackedGTIDs(p)
	TrackedSchema(p)
	TrackedSystemVariables(p)
	ReadLenEncInt(p)
	ReadLenEncString(p)
	if id, ok := StmtID(p); ok {
		q := bytes.Clone(p)
		SetStmtID(q, id+1)
		if id2, _ := StmtID(q); id2 != id+1 {
			t.Fatal("SetStmtID lost the id")
		}
	}
}

// fuzzServerAuth runs the server side of authentication with stream as the client's bytes:
// its first packet as the HandshakeResponse, the rest as the auth exchange.
func fuzzServerAuth(t *testing.T, sel byte, stream []byte) {
	br := bufio.NewReaderSize(bytes.NewReader(stream), 16)
	r := NewPacketReader(br, MaxHandshakePayload)
	p, seq, err := r.Next()
	if err != nil {
		return
	}
	resp, err := DecodeHandshakeResponse(p)
	if err != nil {
		return
	}
	plugin := PluginNativePassword
	if sel&1 != 0 {
		plugin = PluginCachingSHA2Password
	}
	h := &Handshake{Caps: fakeCaps, AuthPlugin: plugin, Salt: []byte("abcdefghijklmnopqrst")}
	cache := NewSHA2Cache()
	if sel&2 != 0 {
		cache.put("u", sha2Digest("pw"))
	}
	var cred *Credential
	if sel&4 != 0 {
		cred = &Credential{User: resp.User, Password: "pw", Plugin: plugin}
	}
	a := &ServerAuth{Handshake: h, Resp: resp, Cred: cred, TLS: sel&8 != 0, RSAKey: fuzzKey, ClientHost: "h", Cache: cache}
	if _, err := a.Run(r, io.Discard, seq+1); err != nil && !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("Run: error %v does not wrap ErrAccessDenied", err)
	}
}

// fuzzConnect runs the client side with stream as the server's bytes.
func fuzzConnect(sel byte, stream []byte) {
	cfg := ClientConfig{User: "u", Password: "pw", Caps: fuzzCaps(sel) | DefaultClientCaps, MaxPayload: 1 << 16}
	if sel&0x80 != 0 {
		cfg.ServerPubKey = &fuzzKey.PublicKey
	}
	Connect(&fuzzConn{r: bytes.NewReader(stream)}, cfg)
}

// fuzzConn is a net.Conn that reads a fixed byte stream and discards what is written.
type fuzzConn struct{ r io.Reader }

func (c *fuzzConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzSeeds are well-formed conversations: responses to each command with and without
// DEPRECATE_EOF, greetings, handshake responses and auth exchanges.
func fuzzSeeds() [][]byte {
	frame := func(cmdIdx, capsSel byte, payloads ...[]byte) []byte {
		out := []byte{cmdIdx, capsSel}
		seq := byte(1)
		for _, p := range payloads {
			out, seq = AppendPacket(out, seq, p)
		}
		return out
	}
	const classic, dep = 0x07, 0x0f // PROTOCOL_41|TRANSACTIONS|SESSION_TRACK [|DEPRECATE_EOF]
	capsC, capsD := fuzzCaps(classic), fuzzCaps(dep)
	auto := OK{Status: StatusAutocommit}
	ss := append([]byte{SessionTrackSchema, 4, 3}, "app"...)
	hr := AppendHandshakeResponse(nil, &HandshakeResponse{
		Caps: fakeCaps, User: "u", AuthResponse: SHA2Scramble("pw", []byte("abcdefghijklmnopqrst")),
		Database: "db", AuthPlugin: PluginCachingSHA2Password, Attrs: map[string]string{"k": "v"},
	})
	hs := (&Handshake{ConnID: 1, ServerVersion: "5.5.5-10.11.6-MariaDB", Caps: fakeCaps, Charset: 45,
		Status: 2, AuthPlugin: PluginNativePassword, Salt: []byte("abcdefghijklmnopqrst")}).Append(nil)
	var client []byte // the client side: greeting, auth switch, fast auth, OK
	for _, pk := range []struct {
		seq byte
		p   []byte
	}{
		{0, hs},
		{2, append([]byte("\xfe"+PluginCachingSHA2Password+"\x00"), "abcdefghijklmnopqrst\x00"...)},
		{4, []byte{headerAuthMore, sha2FastAuthSuccess}},
		{5, pOK(auto, fakeCaps)},
	} {
		client, _ = AppendPacket(client, pk.seq, pk.p)
	}
	return [][]byte{
		frame(0, classic, pCount(2), pColumn("a", 3), pColumn("b", 253), pEOF(2), pTextRow("1", "NULL"), pEOF(2)),
		frame(0, dep, pCount(1), pColumn("a", 3), pTextRow("1"), pOKEOF(OK{Status: StatusMoreResultsExists}, capsD), pOK(auto, capsD)),
		frame(0, dep, pOK(OK{Status: StatusSessionStateChanged, SessionState: ss, Info: "i"}, capsD)),
		frame(0, classic, []byte("\xfbfile.csv"), pOK(auto, capsC)),
		frame(1, dep, pCount(1), pColumn("a", 8), pBinRow(7), pOKEOF(auto, capsD)),
		frame(1, classic, pCount(1), pColumn("a", 8), pEOF(StatusCursorExists)),
		frame(2, classic, pBinRow(1), pEOF(StatusCursorExists|StatusLastRowSent)),
		frame(3, classic, pPrepareOK(1, 1, 1), pColumn("?", 8), pEOF(2), pColumn("a", 8), pEOF(2)),
		frame(3, dep, pPrepareOK(1, 1, 1), pColumn("?", 8), pColumn("a", 8)),
		frame(4, classic, pColumn("a", 3), pEOF(2)),
		frame(5, classic, []byte("Uptime: 1")),
		frame(6, classic, pERR(1045, "denied")),
		frame(7, classic, pEOF(2)),
		// Server side of auth: HandshakeResponse, then the client's full-auth answers.
		frame(0, 0x05, hr, []byte{sha2RequestPublicKey}),
		frame(0, 0x0d, hr, []byte("pw\x00")),
		frame(0, 0x07, hr),
		frame(0, 0x04, hr, NativePasswordScramble("pw", []byte("abcdefghijklmnopqrst"))),
		append([]byte{0, 0xff}, client...),
	}
}
