package health

import (
	"context"
	"crypto/tls"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Backend TLS for every connection baton opens to a server (probes, failover steps, the data
// path's pools, cancel requests), per the node's topology.NodeTLS.
//
// PostgreSQL: baton negotiates TLS itself (pgconn's AfterNetConnect) rather than through
// pgconn's sslmode, so that one TCP connection serves prefer whatever the server answers (pgconn
// would dial a second one for the plaintext fallback) and so that the errors name the node and
// the mode. MySQL/MariaDB: go-sql-driver's TLS with AllowFallbackToPlaintext for prefer;
// proxy/mywire does the same for the data path.

// sslRequest is PostgreSQL's SSLRequest: length 8, code 80877103.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// PGWithTLS is a ConnectPG option that makes the connection follow t: SSLRequest, then TLS, or
// (prefer) plaintext when the server declines.
func PGWithTLS(t *topology.NodeTLS) func(*pgconn.Config) {
	return func(cfg *pgconn.Config) { PGConfigTLS(cfg, t) }
}

// PGConfigTLS makes a pgconn (or pgx) configuration connect per t. An AfterNetConnect already
// set (a login of its own) runs after the TLS handshake, on the TLS connection.
func PGConfigTLS(cfg *pgconn.Config, t *topology.NodeTLS) {
	cfg.TLSConfig = nil
	cfg.Fallbacks = nil
	if !t.Enabled() {
		return
	}
	next := cfg.AfterNetConnect
	cfg.AfterNetConnect = func(ctx context.Context, pc *pgconn.Config, c net.Conn) (net.Conn, error) {
		tc, err := PGStartTLS(ctx, c, t, t.Mode == topology.TLSPrefer)
		if err != nil {
			return c, err // pgconn closes the connection it gets back, also on error
		}
		if next == nil {
			return tc, nil
		}
		nc, err := next(ctx, pc, tc)
		if nc == nil {
			nc = tc
		}
		return nc, err
	}
}

// PGStartTLS sends an SSLRequest on the fresh connection c and, when the server accepts, returns
// the TLS connection over c after the handshake. A server that declines gets c back as it is
// when optional, else t.NoTLSError(). ctx bounds the exchange. On error the caller closes c.
func PGStartTLS(ctx context.Context, c net.Conn, t *topology.NodeTLS, optional bool) (net.Conn, error) {
	if !t.Enabled() {
		return c, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			c.SetDeadline(time.Time{})
		}
	}()
	if _, err := c.Write(sslRequest); err != nil {
		return nil, fmt.Errorf("node %s: sending SSLRequest: %w", t.Node, err)
	}
	// Exactly one byte, unbuffered: anything the server sent after it would be plaintext
	// injected in front of the TLS stream (CVE-2021-23222).
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return nil, fmt.Errorf("node %s: reading the answer to SSLRequest: %w", t.Node, err)
	}
	switch b[0] {
	case 'S':
		tc := tls.Client(c, t.Config)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, t.HandshakeError(err)
		}
		return tc, nil
	case 'N':
		if optional {
			return c, nil
		}
		return nil, t.NoTLSError()
	case 'E':
		// A server that does not know SSLRequest answers with an error (and closes).
		return nil, pgStartupError(c, t)
	}
	return nil, fmt.Errorf("node %s: unexpected answer 0x%02x to SSLRequest", t.Node, b[0])
}

// pgStartupError reads the ErrorResponse that follows an 'E' answer to SSLRequest.
func pgStartupError(c net.Conn, t *topology.NodeTLS) error {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("node %s: the server answered SSLRequest with an error: %w", t.Node, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 4 || n > 8<<10 {
		return fmt.Errorf("node %s: the server answered SSLRequest with a malformed error", t.Node)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(c, body); err != nil {
		return fmt.Errorf("node %s: the server answered SSLRequest with an error: %w", t.Node, err)
	}
	var er pgproto3.ErrorResponse
	if err := er.Decode(body); err != nil {
		return fmt.Errorf("node %s: the server answered SSLRequest with a malformed error", t.Node)
	}
	return &pgconn.PgError{Severity: er.Severity, Code: er.Code, Message: er.Message, Detail: er.Detail}
}

// DialPGCancel opens the connection a CancelRequest for a backend connection of t's node goes
// on: TLS when that connection is TLS (tlsConn), so that the process id and secret key never
// cross the network in the clear, as libpq 17 and pgconn do.
func DialPGCancel(ctx context.Context, t *topology.NodeTLS, tlsConn bool) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return nil, err
	}
	if !tlsConn {
		return c, nil
	}
	tc, err := PGStartTLS(ctx, c, t, false)
	if err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// MyConfigTLS sets go-sql-driver's TLS for t: TLS with a fallback to plaintext for prefer.
func MyConfigTLS(cfg *mysql.Config, t *topology.NodeTLS) {
	if !t.Enabled() {
		cfg.TLS, cfg.TLSConfig, cfg.AllowFallbackToPlaintext = nil, "", false
		return
	}
	cfg.TLS = t.Config
	cfg.AllowFallbackToPlaintext = t.Mode == topology.TLSPrefer
}

// MyConnector is mysql.NewConnector(cfg) after MyConfigTLS(cfg, t), whose connection errors
// name the node and the mode when TLS failed.
func MyConnector(cfg *mysql.Config, t *topology.NodeTLS) (driver.Connector, error) {
	MyConfigTLS(cfg, t)
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	if !t.Enabled() {
		return c, nil
	}
	return &myTLSConnector{Connector: c, t: t}, nil
}

type myTLSConnector struct {
	driver.Connector
	t *topology.NodeTLS
}

// Connect implements driver.Connector.
func (c *myTLSConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, MyTLSError(c.t, err)
	}
	return conn, nil
}

// MyTLSError names the node and the mode in err when it is a TLS failure (the server offers
// no TLS, the handshake or the certificate failed); other errors are returned as they are.
func MyTLSError(t *topology.NodeTLS, err error) error {
	if errors.Is(err, mysql.ErrNoTLS) || errors.Is(err, topology.ErrNoServerTLS) {
		return t.NoTLSError()
	}
	if IsTLSError(err) {
		return t.HandshakeError(err)
	}
	return err
}

// IsTLSError reports whether err comes from a TLS handshake or certificate check.
func IsTLSError(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		ae  tls.AlertError
		rhe tls.RecordHeaderError
	)
	return errors.As(err, &cve) || errors.As(err, &ae) || errors.As(err, &rhe)
}

// proberKey identifies a node's prober: a reload that changes the node's address or its TLS
// settings (or the contents of its TLS files) gets a new prober.
func proberKey(n *topology.Node) string {
	return n.Name + "@" + n.Address + "\x00" + n.TLS().Ident()
}
