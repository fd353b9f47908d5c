package pgwire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL runs it over
// AuthenticationSASL / SASLInitialResponse / AuthenticationSASLContinue /
// SASLResponse / AuthenticationSASLFinal. PostgreSQL clients leave the SCRAM
// user name empty: the user is the StartupMessage's, and the name in the
// client-first-message is ignored, as PostgreSQL does.

const (
	authSCRAMMechanism  = "SCRAM-SHA-256"
	authSCRAMIterations = 4096 // PostgreSQL's default scram_iterations
	authSCRAMSaltLen    = 16   // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
)

// authSCRAMCredential runs SCRAM for a configured user. A credential without a
// usable secret gets the mock exchange, which always fails.
func authSCRAMCredential(be *pgproto3.Backend, user string, cred *Credential) (*BackendKey, error) {
	stored, err := authSCRAMStored(cred)
	if err != nil {
		return nil, authSCRAMMock(be, user, err.Error())
	}
	return authSCRAMExchange(be, user, stored, "")
}

// authSCRAMMock runs an exchange that looks like a real one to the client and
// fails with 28P01 whatever the client proves; reason goes to the returned
// error only. The salt is stable per user name, so repeated probes see the
// same salt, as for a configured user.
func authSCRAMMock(be *pgproto3.Backend, user, reason string) error {
	mac := hmac.New(sha256.New, authSCRAMMockSecret())
	mac.Write([]byte(user))
	keys := make([]byte, 2*sha256.Size)
	rand.Read(keys)
	stored := scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(mac.Sum(nil)[:authSCRAMSaltLen]), Iters: authSCRAMIterations},
		StoredKey:  keys[:sha256.Size],
		ServerKey:  keys[sha256.Size:],
	}
	_, err := authSCRAMExchange(be, user, stored, reason)
	return err
}

// authSCRAMMockSecret keys the mock salts; it lives as long as the process.
var authSCRAMMockSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
})

// authSCRAMExchange runs the SASL messages against stored. doomed != "" makes
// the exchange fail with 28P01 (doomed is the reason) even for a valid proof. On success it
// returns the SCRAM ClientKey the client's proof reveals (scramClientKey).
func authSCRAMExchange(be *pgproto3.Backend, user string, stored scram.StoredCredentials, doomed string) (*BackendKey, error) {
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return stored, nil })
	if err != nil {
		panic("BUG: scram.NewServer failed: " + err.Error())
	}
	conv := srv.NewConversation()

	be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{authSCRAMMechanism}})
	if err := be.Flush(); err != nil {
		return nil, authIOError(user, err)
	}
	authSetType(be, pgproto3.AuthTypeSASL)
	msg, err := authReceive(be, user)
	if err != nil {
		return nil, err
	}
	initial, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return nil, authUnexpected(be, user, "SASL", msg)
	}
	if initial.AuthMechanism != authSCRAMMechanism {
		return nil, authFail(be, user, authCodeProtocolViolation,
			"client selected an invalid SASL authentication mechanism",
			fmt.Sprintf("client selected SASL mechanism %q", initial.AuthMechanism))
	}
	clientFirst := string(initial.Data)
	authSetType(be, pgproto3.AuthTypeSASLContinue)
	if clientFirst == "" {
		// No initial response: ask for it with an empty challenge (RFC 4422).
		be.Send(&pgproto3.AuthenticationSASLContinue{})
		if err := be.Flush(); err != nil {
			return nil, authIOError(user, err)
		}
		if clientFirst, err = authReceiveSASL(be, user); err != nil {
			return nil, err
		}
	}

	serverFirst, err := conv.Step(clientFirst)
	if err != nil {
		return nil, authFail(be, user, authCodeProtocolViolation, "malformed SCRAM message",
			"client-first-message: "+err.Error())
	}
	if conv.AuthzID() != "" {
		return nil, authFail(be, user, authCodeFeatureUnsupported,
			"client uses authorization identity, but it is not supported", "SCRAM authzid sent")
	}
	be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := be.Flush(); err != nil {
		return nil, authIOError(user, err)
	}

	clientFinal, err := authReceiveSASL(be, user)
	if err != nil {
		return nil, err
	}
	serverFinal, err := conv.Step(clientFinal)
	switch {
	case err != nil && (serverFinal == scram.ErrInvalidProof || serverFinal == scram.ErrOtherError):
		// Wrong password, or a proof or nonce that does not match.
		if doomed == "" {
			doomed = "SCRAM proof rejected: " + err.Error()
		}
		return nil, authFailPassword(be, user, doomed)
	case err != nil && serverFinal == scram.ErrChannelBindingsDontMatch:
		return nil, authFail(be, user, authCodeProtocolViolation, "SCRAM channel binding check failed",
			"client-final-message: "+err.Error())
	case err != nil:
		return nil, authFail(be, user, authCodeProtocolViolation, "malformed SCRAM message",
			"client-final-message: "+err.Error())
	case doomed != "":
		return nil, authFailPassword(be, user, doomed)
	case !conv.Valid():
		panic("BUG: SCRAM conversation finished without error but is not valid")
	}

	key := scramClientKey(clientFirst, serverFirst, clientFinal, stored)
	be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)})
	be.Send(&pgproto3.AuthenticationOk{})
	if err := be.Flush(); err != nil {
		return nil, authIOError(user, err)
	}
	return key, nil
}

// authReceiveSASL reads a SASLResponse and returns its data.
func authReceiveSASL(be *pgproto3.Backend, user string) (string, error) {
	msg, err := authReceive(be, user)
	if err != nil {
		return "", err
	}
	resp, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return "", authUnexpected(be, user, "SASL", msg)
	}
	return string(resp.Data), nil
}

// authSetType tells be how to decode the client's next 'p' message.
func authSetType(be *pgproto3.Backend, t uint32) {
	if err := be.SetAuthType(t); err != nil {
		panic("BUG: pgproto3 rejects auth type " + strconv.Itoa(int(t)) + ": " + err.Error())
	}
}

// Derived SCRAM keys are cached per *Credential: deriving from a plaintext
// password costs 4096 PBKDF2 rounds. Entries are keyed by weak pointers and
// dropped when their Credential is garbage collected, so replacing the
// configuration does not leak. An entry also remembers the secrets it was
// built from and is rebuilt if they differ.
var authSCRAMCache struct {
	mu sync.Mutex
	m  map[weak.Pointer[Credential]]*authSCRAMEntry
}

type authSCRAMEntry struct {
	password, verifier string // what stored was built from

	once   sync.Once
	stored scram.StoredCredentials
	err    error
}

// authSCRAMStored returns the server's SCRAM credentials for cred, from its
// SCRAMVerifier if set, else derived once from its Password with a random salt.
func authSCRAMStored(cred *Credential) (scram.StoredCredentials, error) {
	key := weak.Make(cred)
	authSCRAMCache.mu.Lock()
	if authSCRAMCache.m == nil {
		authSCRAMCache.m = make(map[weak.Pointer[Credential]]*authSCRAMEntry)
	}
	e, known := authSCRAMCache.m[key]
	if !known || e.password != cred.Password || e.verifier != cred.SCRAMVerifier {
		e = &authSCRAMEntry{password: cred.Password, verifier: cred.SCRAMVerifier}
		authSCRAMCache.m[key] = e
	}
	authSCRAMCache.mu.Unlock()
	if !known {
		runtime.AddCleanup(cred, authSCRAMForget, key)
	}
	e.once.Do(func() { e.stored, e.err = authSCRAMBuild(e.password, e.verifier) })
	return e.stored, e.err
}

// authSCRAMForget drops the cache entry of a collected Credential.
func authSCRAMForget(key weak.Pointer[Credential]) {
	authSCRAMCache.mu.Lock()
	delete(authSCRAMCache.m, key)
	authSCRAMCache.mu.Unlock()
}

// authSCRAMBuild makes server credentials from a verifier or a password.
// Errors never contain either.
func authSCRAMBuild(password, verifier string) (scram.StoredCredentials, error) {
	if verifier != "" {
		return authParseSCRAMVerifier(verifier)
	}
	if password == "" {
		return scram.StoredCredentials{}, errors.New("no password or SCRAM verifier configured")
	}
	// SASLprep the password as PostgreSQL does, and like PostgreSQL fall back
	// to the raw bytes when SASLprep rejects it.
	client, err := scram.SHA256.NewClient("", password, "")
	if err != nil {
		client, _ = scram.SHA256.NewClientUnprepped("", password, "")
	}
	salt := make([]byte, authSCRAMSaltLen)
	rand.Read(salt)
	stored, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: authSCRAMIterations})
	if err != nil {
		return scram.StoredCredentials{}, errors.New("deriving SCRAM keys failed")
	}
	return stored, nil
}

// authParseSCRAMVerifier parses PostgreSQL's rolpassword form
// "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
func authParseSCRAMVerifier(v string) (scram.StoredCredentials, error) {
	bad := func(what string) (scram.StoredCredentials, error) {
		return scram.StoredCredentials{}, errors.New("malformed SCRAM verifier: " + what)
	}
	rest, ok := strings.CutPrefix(v, authSCRAMMechanism+"$")
	if !ok {
		return bad("does not start with " + authSCRAMMechanism + "$")
	}
	factors, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return bad("no '$' before the keys")
	}
	iterText, saltB64, ok := strings.Cut(factors, ":")
	if !ok {
		return bad("no ':' between iteration count and salt")
	}
	storedB64, serverB64, ok := strings.Cut(keys, ":")
	if !ok {
		return bad("no ':' between StoredKey and ServerKey")
	}
	iters, err := strconv.Atoi(iterText)
	if err != nil || iters < 1 {
		return bad("iteration count is not a positive integer")
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil || len(salt) == 0 {
		return bad("salt is not non-empty base64")
	}
	storedKey, err := base64.StdEncoding.DecodeString(storedB64)
	if err != nil || len(storedKey) != sha256.Size {
		return bad("StoredKey is not 32 bytes of base64")
	}
	serverKey, err := base64.StdEncoding.DecodeString(serverB64)
	if err != nil || len(serverKey) != sha256.Size {
		return bad("ServerKey is not 32 bytes of base64")
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: iters},
		StoredKey:  storedKey,
		ServerKey:  serverKey,
	}, nil
}
