package mywire

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"testing"
)

// FuzzNativeHash runs the server side of authentication against a credential that holds only
// the stored hash (users from the database), with arbitrary client packets, and the client side
// with SHA1(password) against arbitrary server packets. Neither may panic; the server never
// accepts (the fuzzer does not know the password) and never records a key on failure;
// ParseNativeHash accepts only '*' and 40 hex digits.
func FuzzNativeHash(f *testing.F) {
	salt := bytes.Repeat([]byte{'s'}, SaltLen)
	resp := &HandshakeResponse{Caps: DefaultClientCaps, User: "u", AuthResponse: NativePasswordScramble("guess", salt),
		AuthPlugin: PluginNativePassword, MaxPacket: 1 << 24, Charset: 45}
	seed, _ := AppendPacket(nil, 1, AppendHandshakeResponse(nil, resp))
	f.Add(seed, "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19")
	resp.AuthPlugin = PluginCachingSHA2Password
	seed2, _ := AppendPacket(nil, 1, AppendHandshakeResponse(nil, resp))
	seed2, _ = AppendPacket(seed2, 3, NativePasswordScramble("guess", salt))
	f.Add(seed2, "")
	f.Add([]byte{1, 0, 0, 1, 0}, "*zz")
	stored := sha1.Sum([]byte("hash-of-the-password"))
	stage1 := sha1.Sum([]byte("pw"))
	f.Fuzz(func(t *testing.T, data []byte, authString string) {
		if h, err := ParseNativeHash(authString); err == nil {
			if len(h) != sha1.Size || len(authString) != 41 || authString[0] != '*' {
				t.Fatalf("ParseNativeHash(%q) accepted", authString)
			}
		}
		// Server side: the first packet is the HandshakeResponse, the rest the client's answers.
		p, seq, err := ReadPacket(bytes.NewReader(data), MaxHandshakePayload)
		if err == nil {
			if r, err := DecodeHandshakeResponse(p); err == nil {
				hs := &Handshake{Caps: fakeCaps, AuthPlugin: PluginNativePassword, Salt: salt}
				a := &ServerAuth{Handshake: hs, Resp: r, Cred: &Credential{User: r.User, NativeHash: stored[:]}}
				rest := data[4+len(p):]
				_, err := a.Run(NewPacketReader(bufio.NewReader(bytes.NewReader(rest)), MaxHandshakePayload), io.Discard, seq+1)
				if err == nil || !errors.Is(err, ErrAccessDenied) {
					t.Fatalf("server auth with fuzzer bytes: %v", err)
				}
				if a.PasswordSHA1 != nil {
					t.Fatal("a key recorded for a failed login")
				}
			}
		}
		// Client side: the bytes are the server's greeting and answers.
		Connect(&fuzzConn{r: bytes.NewReader(data)}, ClientConfig{User: "u", PasswordSHA1: stage1[:]})
	})
}
