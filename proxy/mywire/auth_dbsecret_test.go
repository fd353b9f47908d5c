package mywire

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// nativeAuthString is what MySQL/MariaDB store for a mysql_native_password account.
func nativeAuthString(password string) string {
	s1 := sha1.Sum([]byte(password))
	s2 := sha1.Sum(s1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(s2[:]))
}

func TestParseNativeHash(t *testing.T) {
	h, err := ParseNativeHash(nativeAuthString("pw"))
	s1 := sha1.Sum([]byte("pw"))
	s2 := sha1.Sum(s1[:])
	if err != nil || !bytes.Equal(h, s2[:]) {
		t.Fatalf("ParseNativeHash: %x %v", h, err)
	}
	for _, bad := range []string{"", "*", "$A$005$abc", "*" + strings.Repeat("z", 40), strings.Repeat("a", 41)} {
		if _, err := ParseNativeHash(bad); err == nil || (len(bad) > 8 && strings.Contains(err.Error(), bad)) {
			t.Errorf("ParseNativeHash(%q): %v", bad, err)
		}
	}
}

// The stored hash verifies the client's scramble and yields SHA1(password), which answers
// another salt's challenge exactly as the password does.
func TestNativeRecover(t *testing.T) {
	hash, _ := ParseNativeHash(nativeAuthString("s3cret"))
	salt, other := NewSalt(), NewSalt()
	stage1 := nativeRecover(NativePasswordScramble("s3cret", salt), hash, salt)
	want := sha1.Sum([]byte("s3cret"))
	if !bytes.Equal(stage1, want[:]) {
		t.Fatalf("recovered %x, want %x", stage1, want)
	}
	if !bytes.Equal(NativeSHA1Scramble(stage1, other), NativePasswordScramble("s3cret", other)) {
		t.Fatal("NativeSHA1Scramble differs from the password's scramble")
	}
	for name, resp := range map[string][]byte{
		"wrong password": NativePasswordScramble("wrong", salt),
		"other salt":     NativePasswordScramble("s3cret", other),
		"empty":          nil,
		"short":          []byte{1, 2, 3},
	} {
		if got := nativeRecover(resp, hash, salt); got != nil {
			t.Errorf("%s: recovered %x", name, got)
		}
	}
}

// End to end over loopback: a server holding only the hash authenticates a client that has
// the password, and a client holding only SHA1(password) logs in to a server that has the
// password (through an AuthSwitchRequest from caching_sha2_password) or only the hash.
func TestNativeHashLogins(t *testing.T) {
	hash, _ := ParseNativeHash(nativeAuthString("pw"))
	stage1 := sha1.Sum([]byte("pw"))
	wrong := sha1.Sum([]byte("nope"))
	s := newFakeServer(t, PluginCachingSHA2Password, nil,
		&Credential{User: "hashed", NativeHash: hash},
		&Credential{User: "plain", Password: "pw"})
	for _, tc := range []struct {
		name   string
		cfg    ClientConfig
		denied bool
	}{
		{"password against hash", ClientConfig{User: "hashed", Password: "pw"}, false},
		{"wrong password against hash", ClientConfig{User: "hashed", Password: "bad"}, true},
		{"no password against hash", ClientConfig{User: "hashed"}, true},
		{"SHA1 against hash", ClientConfig{User: "hashed", PasswordSHA1: stage1[:]}, false},
		{"SHA1 against password", ClientConfig{User: "plain", PasswordSHA1: stage1[:]}, false},
		{"wrong SHA1", ClientConfig{User: "plain", PasswordSHA1: wrong[:]}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(t, s.addr(), tc.cfg)
			serverErr := s.authResult()
			if tc.denied {
				var se *ServerError
				if !errors.As(err, &se) || se.Code != ErAccessDenied || !errors.Is(serverErr, ErrAccessDenied) {
					t.Fatalf("want 1045; client %v, server %v", err, serverErr)
				}
				return
			}
			if err != nil || serverErr != nil {
				t.Fatalf("client %v, server %v", err, serverErr)
			}
		})
	}
}
