package mywire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"testing"
)

func TestHandshakeRoundTrip(t *testing.T) {
	h := &Handshake{
		ConnID: 77, ServerVersion: "8.0.36-baton", Charset: 45, Status: StatusAutocommit,
		Caps:       ClientLongPassword | ClientProtocol41 | ClientSecureConnection | ClientPluginAuth | ClientSSL | ClientDeprecateEOF,
		AuthPlugin: PluginCachingSHA2Password, Salt: NewSalt(),
	}
	got, err := DecodeHandshake(h.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("got %+v\nwant %+v", got, h)
	}
	for i := range len(h.Append(nil)) {
		// Every truncation either decodes (the optional tail) or fails; none panics.
		DecodeHandshake(h.Append(nil)[:i])
	}
	if _, err := DecodeHandshake([]byte{9, 'x', 0}); err == nil {
		t.Fatal("protocol 9 accepted")
	}
}

func TestNewSalt(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := NewSalt()
		if len(s) != SaltLen {
			t.Fatalf("len %d", len(s))
		}
		for _, c := range s {
			if c < 0x21 || c > 0x7e || c == '$' {
				t.Fatalf("bad salt byte %q", c)
			}
		}
		seen[string(s)] = true
	}
	if len(seen) != 100 {
		t.Fatal("repeated salts")
	}
}

func TestHandshakeResponseRoundTrip(t *testing.T) {
	base := ClientProtocol41 | ClientSecureConnection
	tests := []struct {
		name string
		r    HandshakeResponse
	}{
		{"lenenc auth, everything", HandshakeResponse{
			Caps:      base | ClientPluginAuth | ClientPluginAuthLenencClientData | ClientConnectWithDB | ClientConnectAttrs,
			MaxPacket: 1 << 24, Charset: 45, User: "app", AuthResponse: bytes.Repeat([]byte{0xab}, 300),
			Database: "shop", AuthPlugin: PluginCachingSHA2Password,
			Attrs: map[string]string{"_client_name": "Go-MySQL-Driver", "_os": "linux"},
		}},
		{"1-byte auth length", HandshakeResponse{
			Caps: base | ClientPluginAuth, User: "u", AuthResponse: []byte("01234567890123456789"),
			AuthPlugin: PluginNativePassword,
		}},
		{"no plugin auth, empty password", HandshakeResponse{Caps: base, User: "u", AuthResponse: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := AppendHandshakeResponse(nil, &tt.r)
			got, err := DecodeHandshakeResponse(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.r) {
				t.Fatalf("got %+v\nwant %+v", *got, tt.r)
			}
			if IsSSLRequest(p) {
				t.Fatal("response taken for an SSLRequest")
			}
			for i := range p {
				DecodeHandshakeResponse(p[:i]) // must not panic
			}
		})
	}
}

func TestDecodeHandshakeResponseRefuses(t *testing.T) {
	ok := AppendHandshakeResponse(nil, &HandshakeResponse{
		Caps: ClientProtocol41 | ClientSecureConnection | ClientPluginAuthLenencClientData | ClientConnectAttrs,
		User: "u", AuthResponse: []byte("x"), Attrs: map[string]string{"a": "b"},
	})
	old := append([]byte(nil), ok...)
	binary.LittleEndian.PutUint32(old, ClientSecureConnection)
	noNul := AppendSSLRequest(nil, ClientProtocol41, 0, 0)
	noNul = append(noNul, "user-without-nul"...)
	badAttrs := append([]byte(nil), ok...)
	badAttrs[len(badAttrs)-2] = 9 // value length past the end
	hugeAuth := AppendSSLRequest(nil, ClientProtocol41|ClientPluginAuthLenencClientData, 0, 0)
	hugeAuth = append(hugeAuth, 'u', 0, 0xfe, 1, 0, 0, 0, 0, 0, 0, 0)
	for name, p := range map[string][]byte{
		"pre-4.1": old, "short": ok[:20], "user without NUL": noNul, "bad attrs": badAttrs, "auth length past end": hugeAuth,
	} {
		if _, err := DecodeHandshakeResponse(p); !isFormatError(err) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestIsSSLRequest(t *testing.T) {
	if !IsSSLRequest(AppendSSLRequest(nil, ClientProtocol41|ClientSSL, 1<<24, 45)) {
		t.Fatal("SSLRequest not recognised")
	}
	if IsSSLRequest(AppendSSLRequest(nil, ClientProtocol41, 1<<24, 45)) {
		t.Fatal("32 bytes without CLIENT_SSL taken for SSLRequest")
	}
	if IsSSLRequest(append(AppendSSLRequest(nil, ClientProtocol41|ClientSSL, 0, 0), 0)) {
		t.Fatal("33 bytes taken for SSLRequest")
	}
}

func TestScrambles(t *testing.T) {
	salt := []byte("abcdefghijklmnopqrst")
	// Known answers computed independently (Python hashlib, MySQL's formulas).
	if got := hex.EncodeToString(NativePasswordScramble("secret", salt)); got != "8817c50fa779daef010ee7577825b0847df9842e" {
		t.Fatalf("native scramble %s", got)
	}
	if got := hex.EncodeToString(SHA2Scramble("secret", salt)); got != "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809" {
		t.Fatalf("sha2 scramble %s", got)
	}
	if got := NativePasswordScramble("", salt); got != nil {
		t.Fatalf("empty password: % x", got)
	}
	a, b := NativePasswordScramble("secret", salt), NativePasswordScramble("secret", salt)
	if len(a) != 20 || !bytes.Equal(a, b) || bytes.Equal(a, NativePasswordScramble("secreT", salt)) {
		t.Fatal("native scramble not deterministic or not password-dependent")
	}
	s := SHA2Scramble("secret", salt)
	if len(s) != 32 || !sha2VerifyFast(s, sha2Digest("secret"), salt) {
		t.Fatal("fast-auth scramble does not verify against the digest")
	}
	if sha2VerifyFast(SHA2Scramble("other", salt), sha2Digest("secret"), salt) {
		t.Fatal("wrong password verified")
	}
	if sha2VerifyFast(s[:31], sha2Digest("secret"), salt) {
		t.Fatal("short scramble verified")
	}
}

// MariaDB extended capabilities travel only when ClientLongPassword ("CLIENT_MYSQL") is clear.
func TestExtCapsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		caps    uint32
		ext     uint32
		wantExt uint32
	}{
		{"mariadb", DefaultClientCaps &^ ClientLongPassword, MariaDBClientExtendedMetadata | MariaDBClientProgress, MariaDBClientExtendedMetadata | MariaDBClientProgress},
		{"mysql bit set: none", DefaultClientCaps, MariaDBClientExtendedMetadata, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handshake{ServerVersion: "5.5.5-10.11.0-MariaDB", Caps: tc.caps, ExtCaps: tc.ext, AuthPlugin: PluginNativePassword, Salt: NewSalt()}
			got, err := DecodeHandshake(h.Append(nil))
			if err != nil || got.ExtCaps != tc.wantExt || got.Caps != tc.caps {
				t.Fatalf("greeting: %+v %v; want ext %#x", got, err, tc.wantExt)
			}
			r := &HandshakeResponse{Caps: tc.caps, ExtCaps: tc.ext, User: "u", AuthPlugin: PluginNativePassword}
			gr, err := DecodeHandshakeResponse(AppendHandshakeResponse(nil, r))
			if err != nil || gr.ExtCaps != tc.wantExt {
				t.Fatalf("response: %+v %v; want ext %#x", gr, err, tc.wantExt)
			}
		})
	}
}
