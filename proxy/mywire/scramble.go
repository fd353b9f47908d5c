package mywire

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"sync"
)

// NativePasswordScramble is the mysql_native_password response to salt:
// SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))). An empty password gives an empty
// response, as MySQL clients send.
func NativePasswordScramble(password string, salt []byte) []byte {
	if password == "" {
		return nil
	}
	salt = salt[:min(len(salt), SaltLen)]
	stage1 := sha1.Sum([]byte(password))
	stage2 := sha1.Sum(stage1[:])
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= stage1[i]
	}
	return out
}

// SHA2Scramble is the caching_sha2_password fast-auth response to salt:
// SHA256(password) XOR SHA256(SHA256(SHA256(password)) + salt). An empty password gives an
// empty response.
func SHA2Scramble(password string, salt []byte) []byte {
	if password == "" {
		return nil
	}
	salt = salt[:min(len(salt), SaltLen)]
	d1 := sha256.Sum256([]byte(password))
	d2 := sha256.Sum256(d1[:])
	return sha2Xor(d1, d2, salt)
}

func sha2Xor(d1, d2 [32]byte, salt []byte) []byte {
	h := sha256.New()
	h.Write(d2[:])
	h.Write(salt)
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= d1[i]
	}
	return out
}

// sha2Digest is SHA256(SHA256(password)), what the fast-auth cache holds.
func sha2Digest(password string) [32]byte {
	d1 := sha256.Sum256([]byte(password))
	return sha256.Sum256(d1[:])
}

// sha2VerifyFast checks a fast-auth response against a cached digest without the password:
// SHA256(response XOR SHA256(digest + salt)) must equal digest.
func sha2VerifyFast(resp []byte, digest [32]byte, salt []byte) bool {
	if len(resp) != sha256.Size {
		return false
	}
	h := sha256.New()
	h.Write(digest[:])
	h.Write(salt[:min(len(salt), SaltLen)])
	x := h.Sum(nil)
	for i := range x {
		x[i] ^= resp[i]
	}
	got := sha256.Sum256(x)
	return subtle.ConstantTimeCompare(got[:], digest[:]) == 1
}

// SHA2Cache is the caching_sha2_password fast-auth cache: a successful full authentication
// stores SHA256(SHA256(password)) for the user, and later fast-auth attempts are checked
// against it, as MySQL does. Share one per listener. It is safe for concurrent use.
type SHA2Cache struct {
	mu      sync.Mutex
	digests map[string][32]byte
}

// NewSHA2Cache returns an empty cache.
func NewSHA2Cache() *SHA2Cache {
	return &SHA2Cache{digests: make(map[string][32]byte)}
}

func (c *SHA2Cache) get(user string) ([32]byte, bool) {
	if c == nil {
		return [32]byte{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.digests[user]
	return d, ok
}

func (c *SHA2Cache) put(user string, d [32]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.digests[user] = d
}

// Forget drops the user's entry (call it when the user's password changes; a stale entry is
// also ignored and dropped at the next attempt).
func (c *SHA2Cache) Forget(user string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.digests, user)
}

// Len reports the number of cached users.
func (c *SHA2Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.digests)
}

// xorSalt XORs b in place with salt repeated (the obfuscation before RSA encryption).
func xorSalt(b, salt []byte) {
	if len(salt) == 0 {
		return
	}
	for i := range b {
		b[i] ^= salt[i%len(salt)]
	}
}

// rsaEncryptPassword is what a client sends for caching_sha2_password full authentication
// without TLS: RSA-OAEP(SHA1) of (password + NUL) XOR salt.
func rsaEncryptPassword(password string, salt []byte, pub *rsa.PublicKey) ([]byte, error) {
	plain := append([]byte(password), 0)
	xorSalt(plain, salt[:min(len(salt), SaltLen)])
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, plain, nil)
}

// rsaDecryptPassword reverses rsaEncryptPassword.
func rsaDecryptPassword(cipher, salt []byte, key *rsa.PrivateKey) (string, error) {
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, cipher, nil)
	if err != nil {
		return "", err
	}
	xorSalt(plain, salt[:min(len(salt), SaltLen)])
	if len(plain) > 0 && plain[len(plain)-1] == 0 {
		plain = plain[:len(plain)-1]
	}
	return string(plain), nil
}

// publicKeyPEM encodes key's public half as a PEM "PUBLIC KEY" block (what MySQL sends).
func publicKeyPEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// parsePublicKeyPEM decodes a server's PEM public key.
func parsePublicKeyPEM(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("mywire: no PEM block in the server's public key")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("mywire: the server's public key is not an RSA key")
	}
	return pub, nil
}
