package pool

import "net"

// PeerClosed reports whether the server has closed (or is closing) an idle connection: see
// peerClosed. Sessions use it before reusing a connection they kept between statements.
func PeerClosed(c net.Conn) bool { return peerClosed(c) }
