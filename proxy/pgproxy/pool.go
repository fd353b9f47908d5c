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
	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/topology"
)

// ErrPoolTimeout is returned when no backend connection became free within the acquire timeout.
var ErrPoolTimeout = errors.New("pgproxy: timed out waiting for a free backend connection")

// poolKey identifies interchangeable backend connections of one node.
type poolKey struct {
	user, database string
}

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
	stmts   map[string]uint64 // prepared statement name → the session's generation of it
	applied int               // how many session-history entries this connection has run
	broken  bool
	idleAt  time.Time
}

func (b *backend) close() {
	b.broken = true
	b.conn.Close()
}

// nodePool holds the idle connections of one node and bounds how many may be open.
type nodePool struct {
	name, addr string
	cfg        *topology.Pool
	slots      chan struct{} // one token per open connection

	mu     sync.Mutex
	idle   map[poolKey][]*backend
	params map[string]string // ParameterStatus values of the newest connection
	closed bool
}

func newNodePool(n *topology.Node, cfg *topology.Pool) *nodePool {
	return &nodePool{name: n.Name, addr: n.Address, cfg: cfg, slots: make(chan struct{}, cfg.MaxPerNode), idle: map[poolKey][]*backend{}}
}

// serverParams returns the ParameterStatus values a server of this node reported, or nil.
func (p *nodePool) serverParams() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params
}

// acquire returns an idle connection for key, or dials a new one.
func (p *nodePool) acquire(ctx context.Context, key poolKey, password string) (*backend, error) {
	p.mu.Lock()
	if l := p.idle[key]; len(l) > 0 {
		b := l[len(l)-1]
		p.idle[key] = l[:len(l)-1]
		p.mu.Unlock()
		return b, nil
	}
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, p.cfg.AcquireTimeout.D())
	defer cancel()
	select {
	case p.slots <- struct{}{}:
	default:
		p.evictOneIdle()
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ErrPoolTimeout
		}
	}
	b, err := p.dial(ctx, key, password)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return b, nil
}

func (p *nodePool) evictOneIdle() {
	p.mu.Lock()
	var victim *backend
	for k, l := range p.idle {
		if len(l) > 0 {
			victim = l[0]
			p.idle[k] = l[1:]
			break
		}
	}
	p.mu.Unlock()
	if victim != nil {
		victim.close()
		<-p.slots
	}
}

func (p *nodePool) dial(ctx context.Context, key poolKey, password string) (*backend, error) {
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout.D())
	defer cancel()
	pc, err := health.ConnectPG(dctx, p.addr, key.user, password, key.database, "baton")
	if err != nil {
		return nil, fmt.Errorf("connecting to node %s: %w", p.name, err)
	}
	if err := pc.SyncConn(dctx); err != nil {
		pc.Close(context.Background())
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.params = hc.ParameterStatuses
	p.mu.Unlock()
	return &backend{
		node: p, key: key, conn: hc.Conn,
		rd:     pgwire.NewMsgReader(bufio.NewReaderSize(hc.Conn, 32<<10), 1<<30),
		w:      bufio.NewWriterSize(hc.Conn, 16<<10),
		pid:    hc.PID,
		secret: hc.SecretKey,
		stmts:  map[string]uint64{},
	}, nil
}

// release gives b back. A connection that is broken, mid-transaction, or that fails the reset
// query is closed instead of pooled.
func (p *nodePool) release(b *backend, reusable bool) {
	if reusable && !b.broken && p.cfg.ResetQuery != "" {
		reusable = b.reset(p.cfg.ResetQuery) == nil
	}
	p.mu.Lock()
	if !reusable || b.broken || p.closed {
		p.mu.Unlock()
		b.close()
		<-p.slots
		return
	}
	b.stmts = map[string]uint64{}
	b.applied = 0
	b.idleAt = time.Now()
	p.idle[b.key] = append(p.idle[b.key], b)
	p.mu.Unlock()
}

// reset runs the reset query and waits for ReadyForQuery 'I'.
func (b *backend) reset(q string) error {
	b.conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer b.conn.SetDeadline(time.Time{})
	b.w.Write(pgwire.AppendQuery(nil, q))
	if err := b.w.Flush(); err != nil {
		return err
	}
	var failed bool
	for {
		f, err := b.rd.Next()
		if err != nil {
			return err
		}
		switch f[0] {
		case 'E':
			failed = true
		case 'Z':
			if failed || len(f) < 6 || f[5] != 'I' {
				return errors.New("reset query failed")
			}
			return nil
		}
	}
}

// reap closes idle connections unused for longer than the idle timeout.
func (p *nodePool) reap(now time.Time) {
	var old []*backend
	p.mu.Lock()
	for k, l := range p.idle {
		keep := l[:0]
		for _, b := range l {
			if now.Sub(b.idleAt) > p.cfg.IdleTimeout.D() {
				old = append(old, b)
			} else {
				keep = append(keep, b)
			}
		}
		p.idle[k] = keep
	}
	p.mu.Unlock()
	for _, b := range old {
		b.close()
		<-p.slots
	}
}

// closeIdle closes every idle connection; later releases close instead of pooling.
func (p *nodePool) closeAll() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = map[poolKey][]*backend{}
	p.mu.Unlock()
	for _, l := range idle {
		for _, b := range l {
			b.close()
			<-p.slots
		}
	}
}

// stats reports open and idle connection counts.
func (p *nodePool) stats() (open, idle int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.idle {
		idle += len(l)
	}
	return len(p.slots), idle
}
