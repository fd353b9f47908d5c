package pgwire

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// Users whose secret comes from the database (auth_query): baton holds the role's rolpassword
// — a SCRAM verifier or an md5 hash — but never the password. What the client proves during
// its login is enough to log in to the servers as the same role:
//
//   - SCRAM-SHA-256: the client's proof is ClientKey XOR HMAC(StoredKey, AuthMessage). With
//     StoredKey from the verifier, baton recovers ClientKey (and checks SHA-256(ClientKey) ==
//     StoredKey). A server holding the same verifier challenges with the same salt and
//     iteration count, and ClientKey answers any AuthMessage: proof = ClientKey XOR
//     HMAC(SHA-256(ClientKey), AuthMessage). The server's signature is checked with the
//     verifier's ServerKey. This is PgBouncer's technique for auth_query with SCRAM.
//   - md5: the stored hash md5(password + user) is all the md5 exchange needs on both sides.

// BackendKey is what a client's login proved that lets baton log in to the servers as the same
// role. It is as sensitive as a password for that role on those servers: never log it.
type BackendKey struct {
	// SCRAM: the ClientKey and the verifier it was checked against.
	ClientKey []byte
	Salt      []byte
	Iters     int
	ServerKey []byte
	// MD5 is the md5 rolpassword ("md5" + 32 hex digits).
	MD5 string
}

// String redacts the key.
func (k *BackendKey) String() string { return "[redacted]" }

// GoString redacts the key in %#v.
func (k *BackendKey) GoString() string { return k.String() }

// AuthenticateKey is Authenticate that also returns the BackendKey the client's login proved:
// non-nil after a SCRAM exchange (against a SCRAMVerifier or a password) or an md5 exchange
// against an MD5Secret; nil after trust or md5 against a plaintext password.
func AuthenticateKey(be *pgproto3.Backend, user string, cred *Credential, tlsState *tls.ConnectionState) (*BackendKey, error) {
	return authenticate(be, user, cred, tlsState)
}

// CredentialFromRolPassword makes the Credential of a role from its pg_authid.rolpassword: a
// SCRAM verifier authenticates with SCRAM-SHA-256, an md5 hash with md5. A NULL or empty
// password, or one in another form (plaintext, which PostgreSQL no longer stores), gives a
// Credential without a usable secret: its login runs the mock SCRAM exchange and fails with
// 28P01, as PostgreSQL fails a role without a password. The error says which (never the
// secret).
func CredentialFromRolPassword(user, rolpassword string) (*Credential, error) {
	switch {
	case strings.HasPrefix(rolpassword, authSCRAMMechanism+"$"):
		if _, err := authParseSCRAMVerifier(rolpassword); err != nil {
			return &Credential{User: user, Method: AuthSCRAM}, err
		}
		return &Credential{User: user, Method: AuthSCRAM, SCRAMVerifier: rolpassword}, nil
	case isMD5Secret(rolpassword):
		return &Credential{User: user, Method: AuthMD5, MD5Secret: rolpassword}, nil
	case rolpassword == "":
		return &Credential{User: user, Method: AuthSCRAM}, errors.New("the role has no password")
	default:
		return &Credential{User: user, Method: AuthSCRAM}, errors.New("the role's password is neither a SCRAM verifier nor an md5 hash")
	}
}

// isMD5Secret reports whether s is "md5" followed by 32 lower-case hex digits.
func isMD5Secret(s string) bool {
	if len(s) != 3+2*md5.Size || !strings.HasPrefix(s, "md5") {
		return false
	}
	for _, c := range s[3:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// authMD5Secret runs the md5 exchange against a stored md5 hash: the client sends
// "md5" + md5hex(hash + salt), where hash is the stored value without its "md5" prefix.
func authMD5Secret(be *pgproto3.Backend, user, secret string) (*BackendKey, error) {
	var salt [4]byte
	rand.Read(salt[:])
	be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
	if err := be.Flush(); err != nil {
		return nil, authIOError(user, err)
	}
	authSetType(be, pgproto3.AuthTypeMD5Password)
	msg, err := authReceive(be, user)
	if err != nil {
		return nil, err
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return nil, authUnexpected(be, user, "password", msg)
	}
	want := md5SaltedResponse(secret, salt)
	if subtle.ConstantTimeCompare([]byte(pm.Password), want) != 1 {
		return nil, authFailPassword(be, user, "wrong md5 password")
	}
	if err := authSendOk(be, user); err != nil {
		return nil, err
	}
	return &BackendKey{MD5: secret}, nil
}

// md5SaltedResponse is "md5" + md5hex(secret[3:] + salt) for an md5 rolpassword secret.
func md5SaltedResponse(secret string, salt [4]byte) []byte {
	h := md5.New()
	h.Write([]byte(secret[3:]))
	h.Write(salt[:])
	out := make([]byte, 3, 3+2*md5.Size)
	copy(out, "md5")
	return hex.AppendEncode(out, h.Sum(nil))
}

// scramClientKey recovers the ClientKey from a successful exchange: the AuthMessage is
// client-first-message-bare "," server-first-message "," client-final-message-without-proof
// (RFC 5802 §3), and ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage). nil when the
// messages do not have the expected form (the exchange itself succeeded, so that is a BUG in
// the parsing here, not input) or the key does not hash to StoredKey.
func scramClientKey(clientFirst, serverFirst, clientFinal string, stored scram.StoredCredentials) *BackendKey {
	// gs2-header: cbind-flag "," [authzid] ","
	i := strings.IndexByte(clientFirst, ',')
	if i < 0 {
		return nil
	}
	j := strings.IndexByte(clientFirst[i+1:], ',')
	if j < 0 {
		return nil
	}
	bare := clientFirst[i+1+j+1:]
	k := strings.LastIndex(clientFinal, ",p=")
	if k < 0 {
		return nil
	}
	proof, err := base64.StdEncoding.DecodeString(clientFinal[k+3:])
	if err != nil || len(proof) != sha256.Size {
		return nil
	}
	mac := hmac.New(sha256.New, stored.StoredKey)
	mac.Write([]byte(bare + "," + serverFirst + "," + clientFinal[:k]))
	sig := mac.Sum(nil)
	ck := make([]byte, sha256.Size)
	for n := range ck {
		ck[n] = proof[n] ^ sig[n]
	}
	if h := sha256.Sum256(ck); subtle.ConstantTimeCompare(h[:], stored.StoredKey) != 1 {
		return nil
	}
	return &BackendKey{ClientKey: ck, Salt: []byte(stored.Salt), Iters: stored.Iters, ServerKey: stored.ServerKey}
}
