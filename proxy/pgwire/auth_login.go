package pgwire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// ServerLoginError is the server's ErrorResponse to a Login.
type ServerLoginError struct{ Resp *pgproto3.ErrorResponse }

func (e *ServerLoginError) Error() string {
	return fmt.Sprintf("pgwire: server refused the login: %s (SQLSTATE %s)", e.Resp.Message, e.Resp.Code)
}

// ErrLoginUnsupported is wrapped by Login's error when the server asks for an authentication
// method the BackendKey cannot answer (cleartext password, GSS, SSPI, another SASL mechanism).
var ErrLoginUnsupported = errors.New("pgwire: the server asks for an authentication method baton cannot answer with the client's proof")

// loginMaxMessage bounds a server message during Login.
const loginMaxMessage = 1 << 16

// Login runs the startup and authentication of a backend connection with key instead of a
// password: it sends a StartupMessage (protocol 3.0) with params (which must hold "user"),
// answers SCRAM-SHA-256 with the ClientKey (verifying the server's signature with the
// verifier's ServerKey) or md5 with the stored hash, and returns after AuthenticationOk.
//
// It reads exactly the messages of the exchange and nothing after AuthenticationOk, so the
// caller's reader continues with the server's ParameterStatus messages. An ErrorResponse comes
// back as *ServerLoginError. Deadlines on rw are the caller's. No error text holds a secret.
func Login(rw io.ReadWriter, params map[string]string, key *BackendKey) error {
	if key == nil {
		return errors.New("pgwire: no credential for the login")
	}
	sm := &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params}
	b, err := sm.Encode(nil)
	if err != nil {
		return err
	}
	if _, err := rw.Write(b); err != nil {
		return err
	}
	var sc *loginSCRAM
	for {
		typ, body, err := loginRead(rw)
		if err != nil {
			return err
		}
		switch typ {
		case 'E':
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err != nil {
				return fmt.Errorf("pgwire: malformed ErrorResponse during login: %w", err)
			}
			return &ServerLoginError{Resp: &e}
		case 'N', 'v': // NoticeResponse, NegotiateProtocolVersion: nothing to do
			continue
		case 'R':
		default:
			return fmt.Errorf("pgwire: unexpected message %q during login", typ)
		}
		if len(body) < 4 {
			return errors.New("pgwire: short authentication request")
		}
		code, data := binary.BigEndian.Uint32(body), body[4:]
		var out []byte
		switch code {
		case pgproto3.AuthTypeOk:
			if len(data) != 0 {
				return errors.New("pgwire: malformed AuthenticationOk")
			}
			if sc != nil && !sc.verified {
				return errors.New("pgwire: the server accepted the SCRAM login without proving it knows the verifier")
			}
			return nil
		case pgproto3.AuthTypeMD5Password:
			if key.MD5 == "" || len(data) != 4 {
				return fmt.Errorf("%w (md5; the role's secret is a SCRAM verifier)", ErrLoginUnsupported)
			}
			resp := md5SaltedResponse(key.MD5, [4]byte(data))
			out, _ = (&pgproto3.PasswordMessage{Password: string(resp)}).Encode(nil)
		case pgproto3.AuthTypeSASL:
			if key.ClientKey == nil {
				return fmt.Errorf("%w (SCRAM; the role's secret is an md5 hash)", ErrLoginUnsupported)
			}
			if !loginOffers(data, authSCRAMMechanism) {
				return fmt.Errorf("%w (SASL without %s)", ErrLoginUnsupported, authSCRAMMechanism)
			}
			sc = newLoginSCRAM(key)
			out, _ = (&pgproto3.SASLInitialResponse{AuthMechanism: authSCRAMMechanism, Data: []byte(sc.first())}).Encode(nil)
		case pgproto3.AuthTypeSASLContinue:
			if sc == nil {
				return errors.New("pgwire: SASLContinue before SASL")
			}
			final, err := sc.final(string(data))
			if err != nil {
				return err
			}
			out, _ = (&pgproto3.SASLResponse{Data: []byte(final)}).Encode(nil)
		case pgproto3.AuthTypeSASLFinal:
			if sc == nil {
				return errors.New("pgwire: SASLFinal before SASL")
			}
			if err := sc.verify(string(data)); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%w (request %d)", ErrLoginUnsupported, code)
		}
		if _, err := rw.Write(out); err != nil {
			return err
		}
	}
}

// loginRead reads one server message exactly.
func loginRead(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(h[1:]))
	if n < 4 || n > loginMaxMessage {
		return 0, nil, fmt.Errorf("pgwire: server message %q of length %d during login", h[0], n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h[0], body, nil
}

// loginOffers reports whether a SASL request's NUL-terminated mechanism list holds mech.
func loginOffers(data []byte, mech string) bool {
	for _, m := range strings.Split(string(data), "\x00") {
		if m == mech {
			return true
		}
	}
	return false
}

// loginSCRAM is the client side of SCRAM-SHA-256 with a ClientKey instead of a password.
type loginSCRAM struct {
	key         *BackendKey
	nonce       string
	bare        string
	authMessage string
	verified    bool
}

func newLoginSCRAM(key *BackendKey) *loginSCRAM {
	n := make([]byte, 18)
	rand.Read(n)
	return &loginSCRAM{key: key, nonce: base64.StdEncoding.EncodeToString(n)}
}

// first is the client-first-message: no channel binding, the user name left empty (the
// server takes the StartupMessage's, as for every PostgreSQL client).
func (s *loginSCRAM) first() string {
	s.bare = "n=,r=" + s.nonce
	return "n,," + s.bare
}

// final answers the server-first-message.
func (s *loginSCRAM) final(serverFirst string) (string, error) {
	var nonce, salt, iters string
	for _, f := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			iters = f[2:]
		}
	}
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
		return "", errors.New("pgwire: SCRAM server nonce does not extend the client's")
	}
	saltRaw, err := base64.StdEncoding.DecodeString(salt)
	it, ierr := strconv.Atoi(iters)
	if err != nil || ierr != nil {
		return "", errors.New("pgwire: malformed SCRAM server-first-message")
	}
	if subtle.ConstantTimeCompare(saltRaw, s.key.Salt) != 1 || it != s.key.Iters {
		return "", errors.New("pgwire: the server's SCRAM salt or iteration count differs from the verifier the client logged in with (the password changed since): log in again")
	}
	withoutProof := "c=biws,r=" + nonce
	s.authMessage = s.bare + "," + serverFirst + "," + withoutProof
	storedKey := sha256.Sum256(s.key.ClientKey)
	mac := hmac.New(sha256.New, storedKey[:])
	mac.Write([]byte(s.authMessage))
	sig := mac.Sum(nil)
	proof := make([]byte, len(sig))
	for i := range proof {
		proof[i] = s.key.ClientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verify checks the server-final-message's signature against the verifier's ServerKey.
func (s *loginSCRAM) verify(serverFinal string) error {
	if e, ok := strings.CutPrefix(serverFinal, "e="); ok {
		return fmt.Errorf("pgwire: SCRAM server error %q", e)
	}
	v, ok := strings.CutPrefix(serverFinal, "v=")
	if !ok || s.authMessage == "" {
		return errors.New("pgwire: malformed SCRAM server-final-message")
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return errors.New("pgwire: malformed SCRAM server signature")
	}
	mac := hmac.New(sha256.New, s.key.ServerKey)
	mac.Write([]byte(s.authMessage))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("pgwire: the server's SCRAM signature does not match the verifier")
	}
	s.verified = true
	return nil
}
