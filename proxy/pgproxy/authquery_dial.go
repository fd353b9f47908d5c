package pgproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"net"
	"time"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/jackc/pgx/v5/pgconn"
)

// Backend logins of users from the database: pgconn authenticates only with a password, so
// baton runs the startup and authentication itself (pgwire.Login, with the key the client's
// login proved) in pgconn's AfterNetConnect hook — after TLS, before pgconn's own startup —
// and hands pgconn a connection that swallows its StartupMessage and answers it with the
// AuthenticationOk the server already sent. pgconn then reads the server's ParameterStatus,
// BackendKeyData and ReadyForQuery as after any login.

// login returns the ConnectPG options that log in as user with the key of its newest client
// login, or nil when the user has a configured password (or no key: the dial then fails as
// the server refuses an empty password).
func (p *nodePool) login(user, password string) []func(*pgconn.Config) {
	if password != "" || p.dbu == nil {
		return nil
	}
	key := p.dbu.key(user)
	if key == nil {
		return nil
	}
	return []func(*pgconn.Config){func(cfg *pgconn.Config) {
		cfg.AfterNetConnect = func(ctx context.Context, cfg *pgconn.Config, c net.Conn) (net.Conn, error) {
			return keyLogin(ctx, cfg, c, key)
		}
	}}
}

// keyLogin runs pgwire.Login on c with the parameters pgconn would send.
func keyLogin(ctx context.Context, cfg *pgconn.Config, c net.Conn, key *pgwire.BackendKey) (net.Conn, error) {
	if v := cfg.MaxProtocolVersion; v != "" && v != "3.0" {
		// pgwire.Login asks for protocol 3.0, what pgconn asks for by default: a connection
		// that pgconn believes negotiated another version would misread the server.
		return nil, errors.New("BUG: a login with the client's key asks for protocol 3.0, not " + v)
	}
	params := maps.Clone(cfg.RuntimeParams)
	if params == nil {
		params = map[string]string{}
	}
	params["user"] = cfg.User
	if cfg.Database != "" {
		params["database"] = cfg.Database
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	if err := pgwire.Login(c, params, key); err != nil {
		var sle *pgwire.ServerLoginError
		if errors.As(err, &sle) {
			return nil, pgconn.ErrorResponseToPgError(sle.Resp)
		}
		return nil, err
	}
	return &loggedInConn{Conn: c, pending: authOK[:]}, nil
}

// authOK is the AuthenticationOk message.
var authOK = [9]byte{'R', 0, 0, 0, 8, 0, 0, 0, 0}

// loggedInConn is a connection on which the startup and authentication already ran: pgconn's
// StartupMessage (its first write) is dropped and its first reads return AuthenticationOk.
// pgconn reads and writes from different goroutines: Read uses only pending, Write only
// startupDone.
type loggedInConn struct {
	net.Conn
	pending     []byte
	startupDone bool
}

func (c *loggedInConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *loggedInConn) Write(b []byte) (int, error) {
	if c.startupDone {
		return c.Conn.Write(b)
	}
	// pgconn writes its StartupMessage in one call: length (4 bytes, itself included) + body.
	if len(b) < 8 || int(binary.BigEndian.Uint32(b)) > len(b) {
		return 0, errors.New("pgproxy: unexpected first write on a connection that has logged in")
	}
	c.startupDone = true
	n := int(binary.BigEndian.Uint32(b))
	if n == len(b) {
		return n, nil
	}
	m, err := c.Conn.Write(b[n:])
	return n + m, err
}
