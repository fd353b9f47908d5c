package mywire

import (
	"bufio"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// DefaultClientCaps is what Connect asks for when ClientConfig.Caps is zero.
const DefaultClientCaps = ClientLongPassword | ClientLongFlag | ClientProtocol41 |
	ClientTransactions | ClientSecureConnection | ClientMultiResults | ClientPSMultiResults |
	ClientPluginAuth | ClientPluginAuthLenencClientData | ClientSessionTrack | ClientDeprecateEOF

// clientCapsManaged are set by Connect from the configuration (TLS, Database, ConnectAttrs),
// or never asked for because this package cannot speak them (compression, optional result-set
// metadata, multi-factor authentication).
const clientCapsManaged = ClientSSL | ClientConnectWithDB | ClientConnectAttrs | ClientCompress |
	ClientZstdCompression | ClientOptionalResultsetMetadata | ClientMultiFactorAuthentication |
	ClientSSLVerifyServerCert | ClientRememberOptions | ClientCapabilityExtension

// clientCapsRequired are always asked for; a server without them is refused.
const clientCapsRequired = ClientProtocol41 | ClientSecureConnection | ClientPluginAuth

// clientReadBuffer is the read buffer of a backend connection.
const clientReadBuffer = 16 << 10

// ClientConfig configures the client side of a connection (baton → backend).
type ClientConfig struct {
	User, Password, Database string
	// Caps are the capabilities wanted (DefaultClientCaps when 0); the negotiated set is their
	// intersection with the server's. ClientSSL, ClientConnectWithDB and ClientConnectAttrs
	// follow TLS, Database and ConnectAttrs instead; compression and optional result-set
	// metadata are never asked for.
	Caps uint32
	// ExtCaps are the MariaDB extended capabilities wanted (MariaDBClient*); with a MariaDB
	// server that offers any, ClientLongPassword is then not asked for (that is how a client
	// says it sends them) and the negotiated set is the intersection. Never more than this
	// package speaks: ask only for MariaDBClientExtendedMetadata.
	ExtCaps uint32
	Charset byte // collation id; 0 = the server's default
	// TLS, when set, makes the connection TLS (a server without TLS is refused). It must name
	// the server (ServerName) or skip verification explicitly.
	TLS *tls.Config
	// TLSOptional: with TLS set, a server that offers no TLS gets a plaintext connection
	// instead of ErrNoTLS (libpq's sslmode=prefer).
	TLSOptional  bool
	ConnectAttrs map[string]string
	// PasswordSHA1, when set, answers mysql_native_password with SHA1(password) instead of
	// Password (users from the database, auth_dbsecret.go); other plugins are refused.
	PasswordSHA1 []byte
	// MaxPayload bounds the joined payload of the packets read after authentication
	// (DefaultMaxPayload when ≤ 0); set it from max_allowed_packet.
	MaxPayload int
	// ServerPubKey is the server's RSA key for caching_sha2_password full authentication
	// without TLS; nil asks the server for it (trust on first use).
	ServerPubKey *rsa.PublicKey
}

// ClientConn is an authenticated backend connection, in the command phase.
type ClientConn struct {
	Conn          net.Conn      // the socket, or the TLS connection over it
	R             *PacketReader // reads from Conn; it may hold bytes already read
	Caps          uint32        // negotiated capabilities
	ConnID        uint32        // the server's connection (thread) id
	ExtCaps       uint32        // negotiated MariaDB extended capabilities
	ServerExtCaps uint32        // the MariaDB extended capabilities the server offered
	ServerVersion string
	Status        uint16 // status flags of the OK that ended authentication
}

// Connect runs the client side of the connection phase over an established connection:
// greeting, optional TLS, HandshakeResponse, and authentication (mysql_native_password,
// caching_sha2_password fast path and full authentication over TLS or with the server's RSA
// key, one AuthSwitchRequest; mysql_clear_password only over TLS). When the server refuses it
// returns a *ServerError. Deadlines on c are the caller's; on error the caller closes c.
func Connect(c net.Conn, cfg ClientConfig) (*ClientConn, error) {
	greet, seq, err := ReadPacket(c, MaxHandshakePayload)
	if err != nil {
		return nil, fmt.Errorf("mywire: reading the server greeting: %w", err)
	}
	if len(greet) > 0 && greet[0] == headerERR {
		return nil, serverError(greet)
	}
	h, err := DecodeHandshake(greet)
	if err != nil {
		return nil, err
	}
	if cfg.TLSOptional && h.Caps&ClientSSL == 0 {
		cfg.TLS = nil // optional TLS, and the server offers none: plaintext
	}
	want := cfg.Caps
	if want == 0 {
		want = DefaultClientCaps
	}
	want = want&^clientCapsManaged | clientCapsRequired
	if cfg.Database != "" {
		want |= ClientConnectWithDB
	}
	if len(cfg.ConnectAttrs) > 0 {
		want |= ClientConnectAttrs
	}
	if cfg.TLS != nil {
		want |= ClientSSL
	}
	caps := want & h.Caps
	var ext uint32
	if h.Caps&ClientLongPassword == 0 && cfg.ExtCaps&h.ExtCaps != 0 {
		ext = cfg.ExtCaps & h.ExtCaps
		caps &^= ClientLongPassword
	}
	switch {
	case caps&clientCapsRequired != clientCapsRequired:
		return nil, fmt.Errorf("mywire: server %q lacks protocol 4.1, secure connection or plugin auth", h.ServerVersion)
	case cfg.TLS != nil && caps&ClientSSL == 0:
		return nil, fmt.Errorf("mywire: server %q: %w", h.ServerVersion, ErrNoTLS)
	case cfg.Database != "" && caps&ClientConnectWithDB == 0:
		return nil, fmt.Errorf("mywire: server %q does not accept a database at connect", h.ServerVersion)
	}
	charset := cfg.Charset
	if charset == 0 {
		charset = h.Charset
	}
	maxPacket := cfg.MaxPayload
	if maxPacket <= 0 {
		maxPacket = DefaultMaxPayload
	}
	conn := c
	seq++
	if cfg.TLS != nil {
		out, next := AppendPacket(nil, seq, appendSSLRequest(nil, caps, ext, uint32(maxPacket), charset))
		seq = next
		if _, err := c.Write(out); err != nil {
			return nil, fmt.Errorf("mywire: sending SSLRequest: %w", err)
		}
		tc := tls.Client(c, cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("mywire: TLS handshake: %w", err)
		}
		conn = tc
	}
	cl := &authClient{
		cfg: &cfg, conn: conn, caps: caps, seq: seq, salt: h.Salt, plugin: h.AuthPlugin,
		r: NewPacketReader(bufio.NewReaderSize(conn, clientReadBuffer), MaxHandshakePayload),
	}
	if cl.plugin != PluginCachingSHA2Password {
		cl.plugin = PluginNativePassword // the server switches us if the user needs another
	}
	auth, err := cl.response()
	if err != nil {
		return nil, err
	}
	resp := &HandshakeResponse{
		Caps: caps, ExtCaps: ext, MaxPacket: uint32(maxPacket), Charset: charset, User: cfg.User,
		AuthResponse: auth, Database: cfg.Database, AuthPlugin: cl.plugin, Attrs: cfg.ConnectAttrs,
	}
	if err := cl.send(AppendHandshakeResponse(nil, resp)); err != nil {
		return nil, err
	}
	ok, err := cl.authenticate()
	if err != nil {
		return nil, err
	}
	cl.r.SetMaxPayload(cfg.MaxPayload)
	return &ClientConn{
		Conn: conn, R: cl.r, Caps: caps, ConnID: h.ConnID, ServerVersion: h.ServerVersion,
		ExtCaps: ext, ServerExtCaps: h.ExtCaps,
		Status: ok.Status,
	}, nil
}

type authClient struct {
	cfg    *ClientConfig
	conn   net.Conn
	r      *PacketReader
	caps   uint32
	seq    byte
	salt   []byte
	plugin string
}

// response computes the auth response of the current plugin to the current salt.
func (cl *authClient) response() ([]byte, error) {
	if cl.cfg.PasswordSHA1 != nil {
		return nativeSHA1Response(cl.plugin, cl.cfg.PasswordSHA1, cl.salt)
	}
	switch cl.plugin {
	case PluginNativePassword:
		return NativePasswordScramble(cl.cfg.Password, cl.salt), nil
	case PluginCachingSHA2Password:
		return SHA2Scramble(cl.cfg.Password, cl.salt), nil
	case PluginClearPassword:
		if cl.cfg.TLS == nil {
			return nil, errors.New("mywire: server asks for the password in clear on a connection without TLS")
		}
		return append([]byte(cl.cfg.Password), 0), nil
	}
	return nil, fmt.Errorf("mywire: unsupported authentication plugin %q", cl.plugin)
}

// authenticate reads the server's answers until OK or ERR.
func (cl *authClient) authenticate() (OK, error) {
	switched := false
	for {
		p, err := cl.read()
		if err != nil {
			return OK{}, err
		}
		switch p[0] {
		case headerOK:
			return DecodeOK(p, cl.caps)
		case headerERR:
			return OK{}, serverError(p)
		case headerEOF: // AuthSwitchRequest
			if switched {
				return OK{}, errors.New("mywire: server switched authentication plugins twice")
			}
			switched = true
			c := cursor{b: p[1:]}
			cl.plugin = string(c.nulOrEnd())
			if data := c.rest(); len(data) > 0 {
				if data[len(data)-1] == 0 {
					data = data[:len(data)-1]
				}
				cl.salt = append([]byte(nil), data...)
			}
			auth, err := cl.response()
			if err != nil {
				return OK{}, err
			}
			if err := cl.send(auth); err != nil {
				return OK{}, err
			}
		case headerAuthMore:
			if err := cl.moreData(p[1:]); err != nil {
				return OK{}, err
			}
		default:
			return OK{}, formatErrorf("unexpected packet 0x%02x during authentication", p[0])
		}
	}
}

// moreData handles caching_sha2_password's AuthMoreData: fast-auth success or a request for
// full authentication.
func (cl *authClient) moreData(data []byte) error {
	if cl.plugin != PluginCachingSHA2Password || len(data) != 1 {
		return formatErrorf("unexpected AuthMoreData for %s", cl.plugin)
	}
	switch data[0] {
	case sha2FastAuthSuccess:
		return nil // OK follows
	case sha2PerformFullAuth:
	default:
		return formatErrorf("unknown caching_sha2_password code %d", data[0])
	}
	if cl.cfg.TLS != nil {
		return cl.send(append([]byte(cl.cfg.Password), 0))
	}
	pub := cl.cfg.ServerPubKey
	if pub == nil {
		if err := cl.send([]byte{sha2RequestPublicKey}); err != nil {
			return err
		}
		p, err := cl.read()
		if err != nil {
			return err
		}
		if p[0] == headerERR {
			return serverError(p)
		}
		if p[0] != headerAuthMore {
			return formatErrorf("unexpected packet 0x%02x instead of the server's public key", p[0])
		}
		if pub, err = parsePublicKeyPEM(p[1:]); err != nil {
			return err
		}
	}
	enc, err := rsaEncryptPassword(cl.cfg.Password, cl.salt, pub)
	if err != nil {
		return fmt.Errorf("mywire: encrypting the password: %w", err)
	}
	return cl.send(enc)
}

func (cl *authClient) send(payload []byte) error {
	out, next := AppendPacket(nil, cl.seq, payload)
	cl.seq = next
	if _, err := cl.conn.Write(out); err != nil {
		return fmt.Errorf("mywire: connect: %w", err)
	}
	return nil
}

func (cl *authClient) read() ([]byte, error) {
	p, seq, err := cl.r.Next()
	if err != nil {
		return nil, fmt.Errorf("mywire: connect: %w", err)
	}
	if seq != cl.seq {
		return nil, formatErrorf("server packet with sequence id %d, want %d", seq, cl.seq)
	}
	cl.seq++
	if len(p) == 0 {
		return nil, formatErrorf("empty packet during authentication")
	}
	return p, nil
}

func serverError(p []byte) error {
	e, err := DecodeERR(p, ClientProtocol41)
	if err != nil {
		return err
	}
	return &ServerError{ERR: e}
}
