package mywire

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Users from the database (auth_query): MySQL and MariaDB store a mysql_native_password
// account's password as "*" + hex(SHA1(SHA1(password))). The client's scramble response is
// SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))): with the stored hash, baton recovers
// SHA1(password) from it, checks that its SHA1 is the stored hash, and answers any server's
// mysql_native_password challenge with it (NativeSHA1Scramble) — without the password.
//
// caching_sha2_password stores a salted SHA-256 crypt hash ("$A$005$…"): its fast-auth
// scramble cannot be checked against it, and nothing in it answers a server's challenge. Only
// the password itself (sent in clear over TLS in full authentication) would do. MariaDB's
// ed25519 signs the server's challenge with a key derived from the password: the signature
// cannot be reused. Accounts with those plugins cannot log in through baton's auth_query.

// ParseNativeHash parses a mysql_native_password authentication_string ("*" + 40 hex digits)
// into the 20 bytes of SHA1(SHA1(password)). The error never holds the string.
func ParseNativeHash(s string) ([]byte, error) {
	if len(s) != 1+2*sha1.Size || s[0] != '*' {
		return nil, errors.New("mywire: not a mysql_native_password hash (want '*' and 40 hex digits)")
	}
	h, err := hex.DecodeString(strings.ToLower(s[1:]))
	if err != nil {
		return nil, errors.New("mywire: not a mysql_native_password hash (want '*' and 40 hex digits)")
	}
	return h, nil
}

// NativeSHA1Scramble is the mysql_native_password response to salt from SHA1(password):
// SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))).
func NativeSHA1Scramble(stage1, salt []byte) []byte {
	salt = salt[:min(len(salt), SaltLen)]
	stage2 := sha1.Sum(stage1)
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= stage1[i]
	}
	return out
}

// nativeRecover checks a mysql_native_password response against the stored hash
// SHA1(SHA1(password)) and returns SHA1(password), or nil when the response is wrong.
func nativeRecover(resp, hash, salt []byte) []byte {
	if len(resp) != sha1.Size || len(hash) != sha1.Size {
		return nil
	}
	salt = salt[:min(len(salt), SaltLen)]
	h := sha1.New()
	h.Write(salt)
	h.Write(hash)
	stage1 := h.Sum(nil)
	for i := range stage1 {
		stage1[i] ^= resp[i]
	}
	if got := sha1.Sum(stage1); subtle.ConstantTimeCompare(got[:], hash) != 1 {
		return nil
	}
	return stage1
}

// nativeHashAuth verifies auth for a credential that holds a NativeHash and records
// SHA1(password) in the ServerAuth on success.
func (s *authServer) nativeHashAuth(auth []byte) error {
	stage1 := nativeRecover(auth, s.a.Cred.NativeHash, s.a.Handshake.Salt)
	if stage1 == nil {
		return s.denied("wrong password")
	}
	s.a.PasswordSHA1 = stage1
	return s.ok()
}

// nativeSHA1Response answers plugin's challenge with SHA1(password). Only
// mysql_native_password can be answered so; to another plugin (a MySQL server's default
// caching_sha2_password in its greeting) the response is empty: the server then switches to
// the account's plugin, and refuses the login if that is not mysql_native_password either.
func nativeSHA1Response(plugin string, stage1, salt []byte) ([]byte, error) {
	if plugin != PluginNativePassword {
		return []byte{}, nil
	}
	return NativeSHA1Scramble(stage1, salt), nil
}

// ErrRefused is wrapped by ServerAuth.Run's error when the credentials were right but
// ServerAuth.Admit refused the session (a connection limit).
var ErrRefused = errors.New("mywire: session refused")

// admit runs ServerAuth.Admit before the OK that ends a successful exchange; its ERR, if any,
// is sent instead.
func (s *authServer) admit() error {
	if s.a.Admit == nil {
		return nil
	}
	e := s.a.Admit()
	if e == nil {
		return nil
	}
	out := AppendERR(nil, s.seq, *e, s.caps|ClientProtocol41)
	s.seq++
	if _, err := s.w.Write(out); err != nil {
		return fmt.Errorf("%w: user %q: %s (sending the error failed: %w)", ErrRefused, s.a.Resp.User, e.Message, err)
	}
	return fmt.Errorf("%w: user %q: %s", ErrRefused, s.a.Resp.User, e.Message)
}
