package mywire

import (
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// ErrAccessDenied is wrapped by every error ServerAuth.Run returns.
var ErrAccessDenied = errors.New("mywire: access denied")

// Credential is what baton knows of one client user. Plugin is PluginNativePassword (the
// default when empty) or PluginCachingSHA2Password.
type Credential struct {
	User     string
	Password string
	Plugin   string
	// NativeHash, when set, is SHA1(SHA1(password)) from the database (auth_dbsecret.go): it
	// verifies mysql_native_password without the password.
	NativeHash []byte
}

// ServerAuth runs the server side of authentication for one client connection, after the
// greeting (Handshake) was sent and the HandshakeResponse (Resp) was read.
type ServerAuth struct {
	Handshake *Handshake
	Resp      *HandshakeResponse
	// Cred is the user's credential; nil means the user is unknown (the exchange runs and
	// fails the same way as a wrong password, so user names cannot be probed).
	Cred *Credential
	// TLS is true when the connection is TLS (caching_sha2 full auth then takes the
	// password in clear).
	TLS bool
	// RSAKey lets caching_sha2 full authentication run without TLS (the client asks for the
	// public key and sends the password encrypted). nil refuses full auth without TLS.
	RSAKey *rsa.PrivateKey
	// ClientHost is the client's address as it appears in "Access denied" messages.
	ClientHost string
	// Cache is the caching_sha2 fast-auth cache shared by the listener; nil disables fast auth.
	Cache *SHA2Cache
	// Admit, when set, runs after the credentials proved right and before the OK: a non-nil
	// ERR is sent instead (a connection limit) and Run's error wraps ErrRefused.
	Admit func() *ERR
	// PasswordSHA1 is set by Run after a successful login against Cred.NativeHash: the
	// SHA1(password) the client proved, which answers servers' mysql_native_password
	// challenges (ClientConfig.PasswordSHA1). Never log it.
	PasswordSHA1 []byte
}

// Run runs the authentication exchange and ends it by sending OK (with Handshake.Status) or
// ERR. seq is the sequence id of the server's next packet (the HandshakeResponse's plus one);
// Run returns the one after its last packet. When the client used another plugin than the
// user's, Run sends an AuthSwitchRequest with the same salt.
//
// On failure it has sent ERR 1045 (28000) "Access denied for user 'u'@'host' (using
// password: YES|NO)" as MySQL does — or 1251 when the client cannot switch plugins, 1043/1156
// when it broke the protocol — and returns an error wrapping ErrAccessDenied (and the
// *FormatError, if any). When the socket failed or the client left, nothing is sent and the
// error also wraps the I/O error. No error text contains a secret.
//
// r should have a small limit (MaxHandshakePayload) during authentication; deadlines are the
// caller's. Run is safe for concurrent use on different connections sharing Cache.
func (a *ServerAuth) Run(r *PacketReader, w io.Writer, seq byte) (nextSeq byte, err error) {
	s := &authServer{a: a, r: r, w: w, seq: seq, caps: a.Resp.Caps & a.Handshake.Caps}
	s.usedPassword = len(a.Resp.AuthResponse) > 0
	err = s.run()
	return s.seq, err
}

type authServer struct {
	a            *ServerAuth
	r            *PacketReader
	w            io.Writer
	seq          byte
	caps         uint32
	usedPassword bool
	buf          []byte
}

func (s *authServer) run() error {
	a := s.a
	if a.Resp.Caps&ClientSSL != 0 && !a.TLS {
		return s.fail(ErHandshake, "08S01", "Bad handshake", "client claims TLS on a plain connection")
	}
	plugin := PluginNativePassword
	if a.Cred == nil {
		if a.Handshake.AuthPlugin == PluginCachingSHA2Password {
			plugin = PluginCachingSHA2Password
		}
	} else if a.Cred.Plugin != "" {
		plugin = a.Cred.Plugin
	}
	if plugin != PluginNativePassword && plugin != PluginCachingSHA2Password {
		return s.denied(fmt.Sprintf("unsupported plugin %q configured", plugin))
	}
	clientPlugin := a.Resp.AuthPlugin
	if a.Resp.Caps&ClientPluginAuth == 0 {
		clientPlugin = PluginNativePassword
	}
	auth := a.Resp.AuthResponse
	if clientPlugin != plugin {
		if a.Resp.Caps&ClientPluginAuth == 0 {
			return s.fail(ErNotSupportedAuth, "08004",
				"Client does not support authentication protocol requested by server; consider upgrading MySQL client",
				"client cannot switch to "+plugin)
		}
		s.buf = append(s.buf[:0], headerEOF)
		s.buf = append(s.buf, plugin...)
		s.buf = append(s.buf, 0)
		s.buf = append(s.buf, a.Handshake.Salt...)
		s.buf = append(s.buf, 0)
		if err := s.send(s.buf); err != nil {
			return err
		}
		var err error
		if auth, err = s.read(); err != nil {
			return err
		}
		s.usedPassword = len(auth) > 0
	}
	if plugin == PluginCachingSHA2Password {
		return s.cachingSHA2(auth)
	}
	if a.Cred != nil && a.Cred.NativeHash != nil {
		return s.nativeHashAuth(auth)
	}
	password := "\x00unknown user" // an unknown user costs the same work as a known one
	if a.Cred != nil {
		password = a.Cred.Password
	}
	want := NativePasswordScramble(password, a.Handshake.Salt)
	if subtle.ConstantTimeCompare(auth, want) != 1 || a.Cred == nil {
		if a.Cred == nil {
			return s.denied("unknown user")
		}
		return s.denied("wrong password")
	}
	return s.ok()
}

// cachingSHA2 verifies a caching_sha2_password scramble: fast path through the cache, else
// full authentication with the password over TLS or RSA.
func (s *authServer) cachingSHA2(auth []byte) error {
	a := s.a
	if len(auth) == 0 {
		if a.Cred != nil && a.Cred.Password == "" {
			return s.ok()
		}
		return s.denied("empty response")
	}
	if a.Cred != nil && a.Cred.Password == "" {
		return s.denied("password sent for a user without one")
	}
	if a.Cred != nil {
		if d, ok := a.Cache.get(a.Cred.User); ok {
			cur := sha2Digest(a.Cred.Password)
			if subtle.ConstantTimeCompare(d[:], cur[:]) == 1 {
				if !sha2VerifyFast(auth, d, a.Handshake.Salt) {
					return s.denied("wrong password (fast auth)")
				}
				if err := s.send([]byte{headerAuthMore, sha2FastAuthSuccess}); err != nil {
					return err
				}
				return s.ok()
			}
			a.Cache.Forget(a.Cred.User) // the password changed since
		}
	}
	if err := s.send([]byte{headerAuthMore, sha2PerformFullAuth}); err != nil {
		return err
	}
	p, err := s.read()
	if err != nil {
		return err
	}
	var password string
	if len(p) == 1 && p[0] == sha2RequestPublicKey {
		if a.RSAKey == nil {
			return s.denied("public key requested but no RSA key configured")
		}
		pemKey, err := publicKeyPEM(a.RSAKey)
		if err != nil {
			return s.denied("encoding the public key: " + err.Error())
		}
		if err := s.send(append([]byte{headerAuthMore}, pemKey...)); err != nil {
			return err
		}
		if p, err = s.read(); err != nil {
			return err
		}
	}
	switch {
	case a.TLS:
		if len(p) > 0 && p[len(p)-1] == 0 {
			p = p[:len(p)-1]
		}
		password = string(p)
	case a.RSAKey == nil:
		return s.denied("full authentication without TLS or RSA key")
	default:
		if password, err = rsaDecryptPassword(p, a.Handshake.Salt, a.RSAKey); err != nil {
			return s.denied("undecryptable password")
		}
	}
	if a.Cred == nil {
		return s.denied("unknown user")
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(a.Cred.Password)) != 1 {
		return s.denied("wrong password")
	}
	a.Cache.put(a.Cred.User, sha2Digest(a.Cred.Password))
	return s.ok()
}

// send writes one packet with the next sequence id; a write error is returned wrapped.
func (s *authServer) send(payload []byte) error {
	out, next := AppendPacket(nil, s.seq, payload)
	s.seq = next
	if _, err := s.w.Write(out); err != nil {
		return s.ioError(err)
	}
	return nil
}

// read reads the client's next packet and checks its sequence id.
func (s *authServer) read() ([]byte, error) {
	p, seq, err := s.r.Next()
	if err != nil {
		var fe *FormatError
		switch {
		case errors.Is(err, ErrPacketTooLarge):
			return nil, s.fail(ErNetPacketTooLarge, "08S01",
				"Got a packet bigger than 'max_allowed_packet' bytes", err.Error())
		case errors.As(err, &fe):
			return nil, s.failErr(ErHandshake, "08S01", "Bad handshake", err)
		}
		return nil, s.ioError(err)
	}
	if seq != s.seq {
		return nil, s.failErr(ErNetPacketsOutOfOrder, "08S01", "Got packets out of order",
			formatErrorf("client packet with sequence id %d, want %d", seq, s.seq))
	}
	s.seq++
	return p, nil
}

func (s *authServer) ok() error {
	if err := s.admit(); err != nil {
		return err
	}
	out := AppendOK(nil, s.seq, OK{Status: s.a.Handshake.Status}, s.caps)
	s.seq++
	if _, err := s.w.Write(out); err != nil {
		return s.ioError(err)
	}
	return nil
}

func (s *authServer) denied(reason string) error {
	yes := "NO"
	if s.usedPassword {
		yes = "YES"
	}
	msg := fmt.Sprintf("Access denied for user '%s'@'%s' (using password: %s)",
		s.a.Resp.User, s.a.ClientHost, yes)
	return s.fail(ErAccessDenied, "28000", msg, reason)
}

func (s *authServer) fail(code uint16, state, msg, reason string) error {
	return s.failErr(code, state, msg, errors.New(reason))
}

// failErr sends ERR and returns an error wrapping ErrAccessDenied and cause.
func (s *authServer) failErr(code uint16, state, msg string, cause error) error {
	out := AppendERR(nil, s.seq, ERR{Code: code, State: state, Message: msg}, s.caps|ClientProtocol41)
	s.seq++
	if _, err := s.w.Write(out); err != nil {
		return fmt.Errorf("%w: user %q: %w (sending the error failed: %w)", ErrAccessDenied, s.a.Resp.User, cause, err)
	}
	return fmt.Errorf("%w: user %q: %w", ErrAccessDenied, s.a.Resp.User, cause)
}

func (s *authServer) ioError(err error) error {
	return fmt.Errorf("%w: user %q: connection: %w", ErrAccessDenied, s.a.Resp.User, err)
}
