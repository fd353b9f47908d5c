package myproxy

import (
	"crypto/tls"
	"errors"
	"net"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/proxy/mywire"
)

// Backend TLS (topology.NodeTLS): mywire.Connect sends the SSLRequest (CLIENT_SSL), does the
// handshake and then the HandshakeResponse over TLS; prefer falls back to plaintext when the
// server offers no TLS. KILL QUERY goes on a pooled connection, so it is covered too.

// rawConn returns the socket under c's TLS, or c itself.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// tlsError names the node and the mode in a connection error caused by TLS.
func (p *nodePool) tlsError(err error) error {
	if errors.Is(err, mywire.ErrNoTLS) {
		return p.tls.NoTLSError()
	}
	return health.MyTLSError(p.tls, err)
}
