package pgproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/topology"
)

// Backend TLS (topology.NodeTLS): the pools dial through health.ConnectPG with the node's TLS
// option; a CancelRequest goes on a new connection that uses TLS when the connection running
// the statement does.

// cancelDialTimeout bounds connecting and the TLS handshake for a CancelRequest (a handshake
// on a loaded host can take seconds; a cancel that gives up early leaves the statement running).
const cancelDialTimeout = 10 * time.Second

// rawConn returns the socket under c's TLS, or c itself.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// isTLS reports whether b's connection to its server is TLS.
func (b *backend) isTLS() bool {
	_, ok := b.conn.(*tls.Conn)
	return ok
}

// dialCancel opens the connection a CancelRequest for b goes on.
func (p *nodePool) dialCancel(b *backend) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cancelDialTimeout)
	defer cancel()
	// Under prefer (opportunistic TLS, nothing verified) the cancel goes in plaintext, as
	// libpq's PQcancel always sent it: a TLS handshake per cancel made a cancel-heavy client
	// (lib/pq cancels every ended context) several times slower. require and verify-* keep
	// the key off the wire in the clear.
	return health.DialPGCancel(ctx, p.tls, b.isTLS() && p.tls.Mode != topology.TLSPrefer)
}

// backendTLSFailed reports whether err says that the node's backend_tls does not fit its
// server: no TLS where the mode requires it, a certificate that fails verification.
func backendTLSFailed(err error) bool {
	var cve *tls.CertificateVerificationError
	return errors.Is(err, topology.ErrNoServerTLS) || errors.As(err, &cve)
}

// noNodeError is the error of a session that finds no node to greet it: with the probe error
// of the first configured node, so that a client (and the operator) sees why — a backend_tls
// mode the server cannot meet, a certificate that fails verification, a wrong password.
func (s *Server) noNodeError(snap *topology.Snapshot) error {
	why := ""
	if snap != nil {
		for _, n := range snap.Nodes {
			if n.LastErr != "" {
				why = " (" + n.Name + ": " + n.LastErr + ")"
				break
			}
		}
	}
	return fmt.Errorf("no node of cluster %q is reachable%s; retry later", s.config().Name, why)
}
