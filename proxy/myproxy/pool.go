package myproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/proxy/netio"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/topology"
)

// backend is one authenticated server connection, owned by one session at a time.
type backend struct {
	node *nodePool
	key  pool.Key
	cc   *mywire.ClientConn
	w    *bufio.Writer

	// What the connection carries (txpool.go): the statements prepared on it by text, the
	// session history it has applied (hist, as of its last check-in; applied counts the
	// current session's entries it has run), whether it must be reset before the current
	// session's history, and whether its next check-in keeps all that for the next session.
	prep      map[string]*srvStmt
	tick      uint64 // LRU clock of prep
	hist      []string
	applied   int
	needReset bool
	keepState bool
	dirty     bool // it ran statements of a pinned session: reset it when it goes back
	// uses counts the units the connection ran; lastConn is the baton connection id of the
	// session that ran the last one (diagnostics and LAST_INSERT_ID belong to it).
	uses     uint64
	lastConn uint32
	// lid is the connection's LAST_INSERT_ID(), known to be session lidConn's (0: nobody's).
	lid     uint64
	lidConn uint32
	pending []injected // answers to baton's pipelined commands still to read (drain)
	broken  bool

	// Session tracking baton set up for read_your_writes (track.go): the server reports
	// last_gtid in the OK packets of this connection; addedGTID: baton added it to the
	// server's default list, so clients must not see it.
	gtidTracked, addedGTID bool

	// peer is what NetConn returns: the socket, with a PeerClosed that skips the peek while
	// the server has just answered (answered: monotonic time of the last complete answer).
	peer     peerConn
	answered atomic.Int64
}

// peerGrace: a connection whose server completed an answer this recently counts as open
// without a look at its socket (pool.PeerClosed). A close in that window is as much a race as
// one just after the peek (a statement sent then fails the same way), and wait_timeout (whole
// seconds) cannot fall in it; under load nearly every connection taken from the pool or kept
// by a session answered within it, and the peek was one system call per statement.
const peerGrace = time.Millisecond

// monoStart is the origin of backend.answered.
var monoStart = time.Now()

// sawAnswer records that the server completed an answer on b now.
func (b *backend) sawAnswer() { b.answered.Store(int64(time.Since(monoStart))) }

// peerConn is a backend's socket as pool.Conn.NetConn gives it: Close and everything else are
// the socket's; PeerClosed is pool.PeerClosed's peek unless the server answered within
// peerGrace.
type peerConn struct {
	net.Conn
	b *backend
}

// PeerClosed reports whether the server closed the idle connection (see peerGrace).
func (p *peerConn) PeerClosed() bool {
	if a := p.b.answered.Load(); a != 0 && time.Duration(int64(time.Since(monoStart))-a) < peerGrace {
		return false
	}
	return pool.PeerClosed(p.Conn)
}

func (b *backend) close() {
	b.broken = true
	b.cc.Conn.Close()
}

// NetConn implements pool.Conn: the socket (under TLS too), whose PeerClosed knows when the
// server just answered (peerConn).
func (b *backend) NetConn() net.Conn {
	if b.peer.Conn == nil {
		return rawConn(b.cc.Conn)
	}
	return &b.peer
}

// Close implements pool.Conn.
func (b *backend) Close() { b.close() }

// nodePool is one node's pool of MySQL connections.
type nodePool struct {
	*pool.Node[*backend]
	name, addr string
	tls        *topology.NodeTLS // how connections to the node use TLS

	mu      sync.Mutex
	version string // server version of the newest connection
	ext     uint32 // MariaDB extended capabilities the newest connection's server offered
	known   bool   // a connection was made: version and ext are the server's
	track   string // the SET that adds last_gtid to the server's session tracking ("" not known yet)

	dbu *dbUsers // backend keys of users from the database (authquery.go)
}

func newNodePool(n *topology.Node, cfg *topology.Pool, password func(user string) string, maxPayload int) *nodePool {
	np := &nodePool{name: n.Name, addr: n.Address, tls: n.TLS()}
	np.Node = pool.NewNode(cfg,
		func(ctx context.Context, k pool.Key) (*backend, error) {
			return np.dial(ctx, k, password(k.User), maxPayload)
		},
		func(b *backend) bool { return b.resetForReuse() })
	return np
}

// learned returns what the newest connection learned of the server (ok false before any).
func (p *nodePool) learned() (version string, ext uint32, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.version, p.ext, p.known
}

func (p *nodePool) serverVersion() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.version
}

func (p *nodePool) dial(ctx context.Context, k pool.Key, password string, maxPayload int) (*backend, error) {
	parts := strings.Split(k.Variant, "/")
	if len(parts) != 3 {
		return nil, fmt.Errorf("BUG: bad pool variant %q", k.Variant)
	}
	caps, err := strconv.ParseUint(parts[0], 16, 32)
	if err != nil {
		return nil, fmt.Errorf("BUG: bad pool variant %q", k.Variant)
	}
	charset, _ := strconv.Atoi(parts[1])
	ext, err := strconv.ParseUint(parts[2], 16, 32)
	if err != nil {
		return nil, fmt.Errorf("BUG: bad pool variant %q", k.Variant)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to node %s: %w", p.name, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	c = netio.Wrap(c)
	cc, err := mywire.Connect(c, mywire.ClientConfig{
		User: k.User, Password: password, Database: k.Database, Caps: uint32(caps), ExtCaps: uint32(ext),
		Charset: byte(charset), MaxPayload: maxPayload,
		ConnectAttrs: map[string]string{"program_name": "baton"},
		TLS:          p.tls.Config, TLSOptional: p.tls.Mode == topology.TLSPrefer,
		PasswordSHA1: p.passwordSHA1(k.User, password),
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connecting to node %s: %w", p.name, p.tlsError(err))
	}
	p.mu.Lock()
	p.version, p.ext, p.known = cc.ServerVersion, cc.ServerExtCaps, true
	p.mu.Unlock()
	if cc.ExtCaps != uint32(ext) {
		c.Close()
		return nil, fmt.Errorf("connecting to node %s: it does not offer the MariaDB extended capabilities %#x the client negotiated with baton (the cluster's servers differ)", p.name, ext)
	}
	c.SetDeadline(time.Time{})
	be := &backend{node: p, key: k, cc: cc, w: bufio.NewWriterSize(cc.Conn, 16<<10), prep: map[string]*srvStmt{}}
	be.peer = peerConn{Conn: rawConn(cc.Conn), b: be}
	if err := be.trackGTIDs(ctx); err != nil {
		be.close()
		return nil, fmt.Errorf("connecting to node %s: setting up session tracking: %w", p.name, err)
	}
	return be, nil
}

// utf8mb4GeneralCI is collation id 45, the one baton's greeting announces.
const utf8mb4GeneralCI = 45

// variant is the pool-key variant of a session: backend connections must negotiate the same
// capabilities and MariaDB extended capabilities (relayed bytes are in the format they imply)
// and the client's collation.
func variant(caps uint32, charset byte, ext uint32) string {
	return strconv.FormatUint(uint64(caps), 16) + "/" + strconv.Itoa(int(charset)) + "/" + strconv.FormatUint(uint64(ext), 16)
}

// resetForReuse readies b for another session with COM_RESET_CONNECTION (drops temporary
// tables, user variables, prepared statements and session variables; keeps the login).
func (b *backend) resetForReuse() bool {
	if b.broken {
		return false
	}
	if b.keepState {
		// Transaction pooling: the next session compares what the connection carries with
		// its own state (txpool.go) instead.
		b.keepState = false
		return true
	}
	// The reset keeps the current database: USE the pool key's again (injectReset).
	b.cc.Conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer b.cc.Conn.SetDeadline(time.Time{})
	if len(b.pending) > 0 || strandedDB(b) {
		return false // answers baton never read: the stream is out of step; or see strandedDB
	}
	if b.injectReset() != nil || b.drain(nil) != nil || !b.gtidTracked && b.mayTrack() {
		return false
	}
	b.prep = map[string]*srvStmt{}
	b.hist, b.applied, b.needReset, b.dirty = nil, 0, false, false
	b.lidConn = 0
	return true
}

// roundTrip sends a command and reads its whole response, failing on ERR.
func (b *backend) roundTrip(cmd byte, arg []byte, timeout time.Duration) error {
	if err := b.drain(nil); err != nil {
		return err
	}
	c := b.cc.Conn
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	out, _ := mywire.AppendPacket(nil, 0, append([]byte{cmd}, arg...))
	if _, err := b.w.Write(out); err != nil {
		return err
	}
	if err := b.w.Flush(); err != nil {
		return err
	}
	if mywire.NoResponse(cmd) {
		return nil
	}
	t := mywire.NewTracker(cmd, b.cc.Caps)
	for {
		p, _, err := b.cc.R.Next()
		if err != nil {
			return err
		}
		done, err := t.Feed(p)
		if err != nil {
			return err
		}
		if done {
			if e := t.Err(); e != nil {
				return errors.New(e.Message)
			}
			return nil
		}
	}
}

// extMeta reports whether the connection negotiated MariaDB's extended metadata (column
// definitions carry one more field).
func (b *backend) extMeta() bool { return b.cc.ExtCaps&mywire.MariaDBClientExtendedMetadata != 0 }
