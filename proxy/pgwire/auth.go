package pgwire

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgproto3"
)

// AuthMethod is how baton authenticates a client.
type AuthMethod string

// The authentication methods baton implements, named as in pg_hba.conf.
const (
	AuthSCRAM AuthMethod = "scram-sha-256"
	AuthMD5   AuthMethod = "md5"
	AuthTrust AuthMethod = "trust"
)

// Credential is what baton knows of one client user.
//
// A Credential must not be modified once it has been passed to Authenticate:
// build a new one instead (derived SCRAM keys are cached per *Credential).
type Credential struct {
	User   string
	Method AuthMethod
	// Password is the plaintext password; it may be empty when SCRAMVerifier is set.
	Password string
	// SCRAMVerifier is an optional PostgreSQL rolpassword of the form
	// "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
	// When set, SCRAM uses it instead of Password.
	SCRAMVerifier string
	// MD5Secret is an optional PostgreSQL md5 rolpassword ("md5" + 32 hex digits of
	// md5(password + user)). With Method md5 and no Password, it verifies the client's md5
	// response (AuthenticateKey, auth_dbsecret.go).
	MD5Secret string
}

// ErrAuthFailed is wrapped by every error Authenticate returns.
var ErrAuthFailed = errors.New("pgwire: authentication failed")

// SQLSTATE codes sent during authentication.
const (
	authCodeInvalidPassword    = "28P01" // invalid_password
	authCodeInvalidAuthSpec    = "28000" // invalid_authorization_specification
	authCodeProtocolViolation  = "08P01" // protocol_violation
	authCodeFeatureUnsupported = "0A000" // feature_not_supported
)

// authMaxMessageLen bounds a client message body during authentication, like
// PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH.
const authMaxMessageLen = 65535

// Authenticate runs the authentication exchange on an already-started session:
// the StartupMessage has been read by the caller, and user is its "user"
// parameter. cred == nil means the user is not configured.
//
// On success it has sent AuthenticationOk (and nothing after it) and returns nil.
// On failure it has sent a FATAL ErrorResponse as PostgreSQL does (28P01
// "password authentication failed for user ..." for a wrong password and for an
// unknown user alike, 28000 for a method baton cannot run, 08P01 for a message
// that does not fit the exchange) and returns an error wrapping ErrAuthFailed.
// When the client went away or the socket failed, nothing is sent and the
// error also wraps the I/O error (io.EOF or io.ErrUnexpectedEOF for a client
// that closed the connection, a net.Error for a deadline). No error text
// contains a password or a secret.
//
// An unknown user, or one without a usable secret, gets a mock SCRAM exchange
// that always fails, so user names cannot be probed.
//
// Authenticate limits client message bodies to 65535 bytes with
// be.SetMaxBodyLen and leaves that limit in place: the caller sets its own limit
// for the rest of the session afterwards. It also leaves be's auth type at
// AuthTypeOk. Deadlines on the connection are the caller's.
//
// be reads ahead into its own buffer: bytes a client pipelines after its last
// authentication message stay in be. PostgreSQL clients send nothing before
// ReadyForQuery, so a caller that switches to its own reader afterwards loses
// only what a misbehaving client sent early.
//
// tlsState is non-nil when the connection is TLS. Only SCRAM-SHA-256 is
// advertised, never SCRAM-SHA-256-PLUS: tls-server-end-point channel binding
// needs the server's own certificate, which a server-side ConnectionState does
// not carry. Clients on TLS then send the "y" GS2 flag, which is accepted.
//
// Authenticate is safe for concurrent use, also with the same *Credential.
func Authenticate(be *pgproto3.Backend, user string, cred *Credential, tlsState *tls.ConnectionState) error {
	_, err := authenticate(be, user, cred, tlsState)
	return err
}

// authenticate is Authenticate that also returns what the client proved (see AuthenticateKey).
func authenticate(be *pgproto3.Backend, user string, cred *Credential, tlsState *tls.ConnectionState) (*BackendKey, error) {
	_ = tlsState // see the doc comment: no channel binding without the server certificate
	be.SetMaxBodyLen(authMaxMessageLen)
	defer authSetType(be, pgproto3.AuthTypeOk)

	if user == "" {
		return nil, authFail(be, user, authCodeInvalidAuthSpec,
			"no PostgreSQL user name specified in startup packet", "empty user name")
	}
	if cred == nil {
		return nil, authSCRAMMock(be, user, "unknown user")
	}
	switch cred.Method {
	case AuthTrust:
		return nil, authSendOk(be, user)
	case AuthSCRAM:
		return authSCRAMCredential(be, user, cred)
	case AuthMD5:
		if cred.Password == "" && cred.SCRAMVerifier != "" {
			// Like PostgreSQL: md5 with only a SCRAM secret stored runs SCRAM.
			return authSCRAMCredential(be, user, cred)
		}
		if cred.Password == "" && cred.MD5Secret != "" {
			return authMD5Secret(be, user, cred.MD5Secret)
		}
		return nil, authMD5(be, user, cred.Password)
	default:
		return nil, authFail(be, user, authCodeInvalidAuthSpec,
			`authentication method not supported for user "`+user+`"`,
			fmt.Sprintf("unsupported authentication method %q", string(cred.Method)))
	}
}

// authMD5 runs the md5 exchange for user against the plaintext password.
func authMD5(be *pgproto3.Backend, user, password string) error {
	var salt [4]byte
	rand.Read(salt[:])
	be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
	if err := be.Flush(); err != nil {
		return authIOError(user, err)
	}
	authSetType(be, pgproto3.AuthTypeMD5Password)
	msg, err := authReceive(be, user)
	if err != nil {
		return err
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return authUnexpected(be, user, "password", msg)
	}
	if password == "" {
		// Nothing can match; fail the same way as a wrong password.
		return authFailPassword(be, user, "no password configured")
	}
	want := authMD5Response(user, password, salt)
	if subtle.ConstantTimeCompare([]byte(pm.Password), want) != 1 {
		return authFailPassword(be, user, "wrong md5 password")
	}
	return authSendOk(be, user)
}

// authMD5Response is "md5" + md5hex(md5hex(password+user) + salt), what a
// client sends in its PasswordMessage.
func authMD5Response(user, password string, salt [4]byte) []byte {
	inner := md5.Sum([]byte(password + user))
	h := md5.New()
	var hx [2 * md5.Size]byte
	hex.Encode(hx[:], inner[:])
	h.Write(hx[:])
	h.Write(salt[:])
	out := make([]byte, 3, 3+2*md5.Size)
	copy(out, "md5")
	return hex.AppendEncode(out, h.Sum(nil))
}

// authSendOk sends AuthenticationOk.
func authSendOk(be *pgproto3.Backend, user string) error {
	be.Send(&pgproto3.AuthenticationOk{})
	if err := be.Flush(); err != nil {
		return authIOError(user, err)
	}
	return nil
}

// authReceive reads the client's next message. A read failure is returned as
// is; a message that does not decode gets a protocol violation.
func authReceive(be *pgproto3.Backend, user string) (pgproto3.FrontendMessage, error) {
	msg, err := be.Receive()
	if err == nil {
		if _, ok := msg.(*pgproto3.Terminate); ok {
			return nil, fmt.Errorf("%w: user %q: client terminated the session: %w", ErrAuthFailed, user, io.EOF)
		}
		return msg, nil
	}
	if authIsIOError(err) {
		return nil, authIOError(user, err)
	}
	return nil, authFail(be, user, authCodeProtocolViolation,
		"invalid message during authentication", "bad client message: "+err.Error())
}

// authUnexpected answers a message of the wrong type for the exchange, in
// PostgreSQL's words ("expected SASL response, got message type 81").
func authUnexpected(be *pgproto3.Backend, user, expected string, msg pgproto3.FrontendMessage) error {
	typ := -1
	if b, err := msg.Encode(nil); err == nil && len(b) > 0 {
		typ = int(b[0])
	}
	text := fmt.Sprintf("expected %s response, got message type %d", expected, typ)
	return authFail(be, user, authCodeProtocolViolation, text, text)
}

// authFailPassword sends PostgreSQL's 28P01 error for user; reason is for the
// returned error only.
func authFailPassword(be *pgproto3.Backend, user, reason string) error {
	return authFail(be, user, authCodeInvalidPassword,
		`password authentication failed for user "`+user+`"`, reason)
}

// authFail sends a FATAL ErrorResponse and returns an error wrapping
// ErrAuthFailed with reason (never a secret). A failed send is wrapped too.
func authFail(be *pgproto3.Backend, user, code, message, reason string) error {
	be.Send(&pgproto3.ErrorResponse{
		Severity:            "FATAL",
		SeverityUnlocalized: "FATAL",
		Code:                code,
		Message:             message,
	})
	if err := be.Flush(); err != nil {
		return fmt.Errorf("%w: user %q: %s (sending the error failed: %w)", ErrAuthFailed, user, reason, err)
	}
	return fmt.Errorf("%w: user %q: %s", ErrAuthFailed, user, reason)
}

// authIOError wraps a socket error: the client left or a deadline passed.
func authIOError(user string, err error) error {
	return fmt.Errorf("%w: user %q: connection: %w", ErrAuthFailed, user, err)
}

// authIsIOError reports whether err from Backend.Receive came from the socket
// rather than from decoding the client's bytes.
func authIsIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}
