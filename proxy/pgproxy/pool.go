package pgproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/proxy/netio"
	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5/pgconn"
)

// poolKey identifies interchangeable backend connections of one node.
type poolKey = pool.Key

// backend is one hijacked server connection. It is owned by exactly one session at a time (or
// by the pool while idle); its fields are not guarded.
type backend struct {
	node   *nodePool
	key    poolKey
	conn   net.Conn
	rd     *pgwire.MsgReader
	w      *bufio.Writer
	pid    uint32
	secret []byte

	// Session-scoped bookkeeping, reset when the connection returns to the pool.
	stmts map[string]uint64 // prepared statement name → the session's generation of it
	// closeLater: statements the session closed (on another connection) that this connection
	// still holds; they are closed in front of its next unit.
	closeLater []string
	applied    int // how many session-history entries this connection has run
	broken     bool

	// Transaction pooling (shared.go): the settings history text this connection has applied
	// ("" as dialled or reset), whether the next unit must RESET them first, whether the next
	// check-in keeps its state, and the LRU clock of its shared statements.
	settings  string
	needReset bool
	keepState bool
	used      map[string]uint64
	tick      uint64
	// shapes / shapeParams: the RowDescription (or NoData) and ParameterDescription of shared
	// statements on this connection, where known (shape.go).
	shapes, shapeParams map[string][]byte
}

func (b *backend) close() {
	b.broken = true
	b.conn.Close()
	if b.node != nil && b.node.pids != nil {
		b.node.pids.remove(b.pid, b.node)
	}
}

// NetConn implements pool.Conn: the socket, under TLS too (pool.PeerClosed peeks at it).
func (b *backend) NetConn() net.Conn { return rawConn(b.conn) }

// Close implements pool.Conn.
func (b *backend) Close() { b.close() }

// nodePool is one node's pool of PostgreSQL connections (the generic pool.Node does the
// bookkeeping) plus the ParameterStatus values its servers report.
type nodePool struct {
	*pool.Node[*backend]
	name, addr string
	tls        *topology.NodeTLS // how connections to the node use TLS

	pids *backendPIDs // the server's registry of backend process ids
	dbu  *dbUsers     // backend keys of users from the database (authquery.go)

	mu     sync.Mutex
	params map[string]string // ParameterStatus values of the newest connection
}

func newNodePool(n *topology.Node, cfg *topology.Pool, password func(user string) string, pids *backendPIDs) *nodePool {
	np := &nodePool{name: n.Name, addr: n.Address, tls: n.TLS(), pids: pids}
	np.Node = pool.NewNode(cfg,
		func(ctx context.Context, k pool.Key) (*backend, error) { return np.dial(ctx, k, password(k.User)) },
		func(b *backend) bool { return b.resetFor(cfg.ResetQuery) })
	return np
}

// serverParams returns the ParameterStatus values a server of this node reported, or nil.
func (p *nodePool) serverParams() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params
}

func (p *nodePool) acquire(ctx context.Context, key poolKey) (*backend, error) {
	b, err := p.Acquire(ctx, key)
	if errors.Is(err, pool.ErrTimeout) {
		return nil, fmt.Errorf("node %s: %w", p.name, err)
	}
	return b, err
}

// rawSocket makes pgconn dial sockets whose reads and writes skip the scheduler's syscall
// bookkeeping (netio), also under TLS, which runs on top of it.
func rawSocket(cfg *pgconn.Config) {
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return netio.Wrap(c), nil
	}
}

// release gives b back; a broken connection, or one not reusable, is closed.
func (p *nodePool) release(b *backend, reusable bool) {
	p.Release(b, b.key, reusable && !b.broken)
}

func (p *nodePool) dial(ctx context.Context, key poolKey, password string) (*backend, error) {
	pc, err := health.ConnectPG(ctx, p.addr, key.User, password, key.Database, "", append(p.login(key.User, password), health.PGWithTLS(p.tls), rawSocket)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to node %s: %w", p.name, err)
	}
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(context.Background())
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return nil, err
	}
	conn := netio.Wrap(hc.Conn)
	be := &backend{
		node: p, key: key, conn: conn,
		rd:     pgwire.NewMsgReader(bufio.NewReaderSize(conn, 32<<10), 1<<30),
		w:      bufio.NewWriterSize(conn, 16<<10),
		pid:    hc.PID,
		secret: hc.SecretKey,
		stmts:  map[string]uint64{},
	}
	p.mu.Lock()
	p.params = hc.ParameterStatuses
	p.mu.Unlock()
	if p.pids != nil {
		p.pids.add(be.pid, p)
	}
	return be, nil
}

// resetFor readies b for another session: the reset query (DISCARD ALL) and fresh bookkeeping.
func (b *backend) resetFor(q string) bool {
	if b.broken {
		return false
	}
	if b.keepState {
		b.keepState = false
		b.closeLater = nil
		return true
	}
	b.settings, b.needReset, b.used, b.shapes, b.shapeParams = "", false, nil, nil, nil
	if q != "" && b.reset(q) != nil {
		return false
	}
	b.stmts = map[string]uint64{}
	b.closeLater = nil
	b.applied = 0
	return true
}

// reset runs the reset query and waits for ReadyForQuery 'I'.
func (b *backend) reset(q string) error {
	status, failed, err := b.run(q)
	if err == nil && (failed || status != 'I') {
		err = errors.New("reset query failed")
	}
	return err
}

// run sends q as a simple Query of baton's own, discards the answers and returns the
// ReadyForQuery status and whether the server answered an error. An I/O error closes b: its
// stream is out of step.
func (b *backend) run(q string) (status byte, failed bool, err error) {
	return b.runRows(q, nil)
}

// runRows is run that hands each DataRow body to row (when not nil).
func (b *backend) runRows(q string, row func(body []byte)) (status byte, failed bool, err error) {
	b.conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer b.conn.SetDeadline(time.Time{})
	b.w.Write(pgwire.AppendQuery(nil, q))
	if err := b.w.Flush(); err != nil {
		b.close()
		return 0, false, err
	}
	for {
		f, err := b.rd.Next()
		if err != nil {
			b.close()
			return 0, false, err
		}
		switch f[0] {
		case 'D':
			if row != nil {
				row(pgwire.Body(f))
			}
		case 'E':
			failed = true
		case 'Z':
			if len(f) < 6 {
				b.close()
				return 0, failed, errors.New("malformed ReadyForQuery")
			}
			return f[5], failed, nil
		}
	}
}
