package pgproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/proxy/admit"
	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/proxy/listen"
	"github.com/baton-proxy/baton/proxy/netio"
	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/proxy/pins"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Classifier decides where a statement text may run. Implementations are safe for concurrent use.
type Classifier interface {
	Classify(sql string) router.Class
}

// Metrics are the server's counters. Safe for concurrent use.
type Metrics struct {
	Sessions  atomic.Int64
	Accepted  atomic.Int64
	Rejected  atomic.Int64
	ToPrimary atomic.Int64
	ToReplica atomic.Int64
	misroutes atomic.Int64
	retries   atomic.Int64
	errors    atomic.Int64
	authFail  atomic.Int64

	rywWaits, rywFallbacks atomic.Int64 // read_your_writes (ryw.go)

	// Pinned counts the sessions holding each kind of pinned state now.
	Pinned pins.Counts
}

// Misroutes counts writes a replica refused that were resent to the primary.
func (m *Metrics) Misroutes() int64 { return m.misroutes.Load() }

// Retries counts replica reads resent elsewhere because the replica failed.
func (m *Metrics) Retries() int64 { return m.retries.Load() }

// RYWWaits counts read_your_writes waits on a replica's replay position before a read, because
// no replica was known to have replayed the session's last write.
func (m *Metrics) RYWWaits() int64 { return m.rywWaits.Load() }

// RYWFallbacks counts read_your_writes reads sent to the primary because no replica had
// replayed the session's last write in time (or none could be waited on).
func (m *Metrics) RYWFallbacks() int64 { return m.rywFallbacks.Load() }

// AuthFailures counts failed client logins.
func (m *Metrics) AuthFailures() int64 { return m.authFail.Load() }

func (m *Metrics) count(r router.Route) {
	if r == router.Replica {
		m.ToReplica.Add(1)
	} else {
		m.ToPrimary.Add(1)
	}
}

// Server serves one PostgreSQL cluster on one listener.
type Server struct {
	st      atomic.Pointer[serverState] // configuration, node pools and credentials; swapped on reload
	live    *topology.Live
	classer Classifier
	log     *slog.Logger
	tlsConf *tls.Config
	metrics Metrics

	writeGate func() bool    // the etcd write lease (nil: always allowed)
	buf       *buffer.Buffer // holds statements while there is no primary

	ln       net.Listener
	draining atomic.Bool
	wg       sync.WaitGroup // sessions and background loops
	idler    netio.Idler    // parked idle sessions (park.go)

	mu       sync.Mutex
	sessions map[uint64]*session // by cancel key
	startups startupCache        // startup parameter sets the server accepted
	pids     backendPIDs         // process ids of the backends baton holds (identity.go)
	notify   listenHub           // the listening connections of LISTEN without pinning (notify.go)
	dbu      dbUsers             // users from the database: lookups and backend keys (authquery.go)
	guard    loginGuard          // per-user / per-database limits, failed-login backoff (admit.go)
	stop     chan struct{}
	ddl      chan struct{} // signalled after successful DDL: reload the function catalog
}

// DDL returns a channel that receives after a client's DDL statement succeeded.
func (s *Server) DDL() <-chan struct{} { return s.ddl }

// NewServer builds a server for cl. live supplies the topology; c classifies statements.
func NewServer(cl *topology.Cluster, live *topology.Live, c Classifier, tlsConf *tls.Config, log *slog.Logger) *Server {
	s := &Server{live: live, classer: c, log: log, tlsConf: tlsConf,
		sessions: map[uint64]*session{}, stop: make(chan struct{}), ddl: make(chan struct{}, 1)}
	s.apply(cl)
	s.buf = buffer.New(live, func() topology.Buffer { return s.config().Buffer })
	return s
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return &s.metrics }

// Listen binds the cluster's listen address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.config().Listen)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", s.config().Name, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound listen address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts clients until Shutdown. It calls Listen when needed.
func (s *Server) Serve() error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.wg.Add(2)
	go s.reaper()
	go s.parkSweep()
	return listen.Loop(s.ln, s.draining.Load, func() int { return s.config().Limits.MaxClients },
		listen.Counters{Sessions: &s.metrics.Sessions, Accepted: &s.metrics.Accepted, Rejected: &s.metrics.Rejected},
		&s.wg, s.serveConn, rejectTooMany)
}

func rejectTooMany(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	// Read the startup packet so the client is ready to read the answer.
	if _, _, err := pgwire.ReadStartupPacket(c); err == nil {
		c.Write(pgwire.AppendError(nil, pgwire.SevFatal, "53300", "sorry, too many clients already (baton max_clients)"))
	}
}

func (s *Server) reaper() {
	defer s.wg.Done()
	listen.Every(s.stop, 15*time.Second, func(now time.Time) {
		for _, np := range s.nodeMap() {
			np.Reap(now)
		}
	})
}

// Shutdown stops accepting, lets sessions finish their transactions until ctx ends, then closes
// the rest. It returns when every session has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.draining.Swap(true) {
		return nil
	}
	if s.ln != nil {
		s.ln.Close()
	}
	close(s.stop)
	s.buf.Close()
	s.mu.Lock()
	for _, ss := range s.sessions {
		ss.interrupt() // wake idle (and parked) sessions so they leave
	}
	s.mu.Unlock()
	listen.Drain(ctx, &s.wg, func() {
		s.mu.Lock()
		for _, ss := range s.sessions {
			ss.closing.Store(true)
			s.idler.Wake(ss.client) // a parked session resumes, finds its client closed and ends
			ss.client.Close()
			if be := ss.active.Load(); be != nil {
				be.conn.Close()
			}
		}
		s.mu.Unlock()
	})
	for _, np := range s.nodeMap() {
		np.CloseAll()
	}
	return nil
}

// prefixConn replays bytes already read from the socket before reading more.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// oneByteReader hands pgproto3.Backend one byte per Read so that it never reads past the
// message it asked for: after authentication the session's own reader takes over the stream.
type oneByteReader struct{ r *bufio.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := o.r.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// serveConn runs the startup phase and then the session.
func (s *Server) serveConn(c net.Conn) {
	deadline := time.Now().Add(s.config().Limits.StartupTimeout.D())
	c.SetDeadline(deadline)
	var conn net.Conn = c
	var tlsState *tls.ConnectionState
	var params map[string]string
	// PostgreSQL 17 clients may start TLS at once (sslnegotiation=direct): a TLS record's first
	// byte is 0x16, which no startup packet length begins with.
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		c.Close()
		return
	}
	if first[0] == 0x16 {
		if s.tlsConf == nil {
			c.Close()
			return
		}
		conf := s.tlsConf.Clone()
		conf.NextProtos = []string{"postgresql"}
		tc := tls.Server(&prefixConn{Conn: c, prefix: first[:]}, conf)
		if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol != "postgresql" {
			c.Close()
			return
		}
		st := tc.ConnectionState()
		conn, tlsState = tc, &st
	} else {
		conn = &prefixConn{Conn: c, prefix: first[:]}
	}
	for params == nil {
		code, pkt, err := pgwire.ReadStartupPacket(conn)
		if err != nil {
			var fe *pgwire.FormatError
			if errors.As(err, &fe) {
				conn.Write(pgwire.AppendError(nil, pgwire.SevFatal, "08P01", fe.Msg))
			}
			conn.Close()
			return
		}
		switch {
		case code == pgwire.CodeSSLRequest && tlsState == nil:
			if s.tlsConf == nil {
				conn.Write([]byte{'N'})
				continue
			}
			conn.Write([]byte{'S'})
			tc := tls.Server(conn, s.tlsConf)
			if err := tc.Handshake(); err != nil {
				conn.Close()
				return
			}
			st := tc.ConnectionState()
			conn, tlsState = tc, &st
		case code == pgwire.CodeGSSENCRequest && tlsState == nil:
			conn.Write([]byte{'N'})
		case code == pgwire.CodeCancelRequest:
			s.handleCancel(pkt)
			conn.Close()
			return
		case code>>16 == 3:
			p, err := pgwire.DecodeStartup(pkt)
			if err != nil {
				conn.Write(pgwire.AppendError(nil, pgwire.SevFatal, "08P01", err.(*pgwire.FormatError).Msg))
				conn.Close()
				return
			}
			if code&0xffff != 0 {
				var unknown []string
				for k := range p {
					if strings.HasPrefix(k, "_pq_.") {
						unknown = append(unknown, k)
					}
				}
				nb, _ := (&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown}).Encode(nil)
				conn.Write(nb)
			}
			params = p
		default:
			conn.Write(pgwire.AppendError(nil, pgwire.SevFatal, "08P01", fmt.Sprintf("unsupported frontend protocol %d.%d: baton supports 3.0", code>>16, code&0xffff)))
			conn.Close()
			return
		}
	}
	if s.config().TLS.Require && tlsState == nil {
		conn.Write(pgwire.AppendError(nil, pgwire.SevFatal, "28000", "baton requires TLS (sslmode=require)"))
		conn.Close()
		return
	}
	if params["replication"] != "" && params["replication"] != "false" && params["replication"] != "0" {
		conn.Write(pgwire.AppendError(nil, pgwire.SevFatal, "08P01", "baton does not proxy replication connections"))
		conn.Close()
		return
	}
	br := bufio.NewReaderSize(conn, 4<<10)
	bw := &clientWriter{w: conn}
	// An ErrorResponse during authentication is a failed login: the backoff counts it before
	// the client can read it (admit.FailureWriter).
	fw := &admit.FailureWriter{W: conn, IsErr: func(p []byte) bool { return len(p) > 0 && p[0] == 'E' },
		Failed: func() { s.loginFailed(c.RemoteAddr()) }}
	be := pgproto3.NewBackend(oneByteReader{br}, fw)
	userName := params["user"]
	s.loginWait(c.RemoteAddr(), deadline)
	u, err := s.authenticate(be, userName, tlsState)
	if err != nil {
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			s.metrics.authFail.Add(1)
			if !fw.Counted() {
				s.loginFailed(c.RemoteAddr())
			}
			s.log.Info("client authentication failed", "cluster", s.config().Name, "user", userName, "remote", c.RemoteAddr().String())
		}
		bw.Flush()
		conn.Close()
		return
	}
	fw.Stop()
	db := params["database"]
	if db == "" {
		db = userName
	}
	release, fatal := s.admitSession(u, db)
	if fatal != nil {
		bw.Write(fatal)
		bw.Flush()
		conn.Close()
		return
	}
	sess := &session{
		srv: s, client: conn, cw: bw, user: u,
		crd:   pgwire.NewMsgReader(br, int(s.config().Limits.MaxMessageSize)),
		key:   poolKey{User: u.BackendUser, Database: db},
		conns: map[*nodePool]*backend{}, stmts: map[string]*stmt{}, txStatus: 'I',
		txPooling: s.config().PoolModeOf(u) == topology.PoolTransaction,
	}
	s.guard.hold(sess, release) // until unregister, when the session ends (admit.go)
	if err := s.greet(sess, params); err != nil {
		var rej *endSession
		if errors.As(err, &rej) {
			bw.Write(rej.fatal)
		} else {
			bw.Write(pgwire.AppendError(nil, pgwire.SevFatal, "57P03", "baton: "+err.Error()))
		}
		for np, be := range sess.conns {
			np.release(be, false)
		}
		s.guard.drop(sess)
		bw.Flush()
		conn.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if err := bw.Flush(); err != nil {
		conn.Close()
		s.unregister(sess)
		return
	}
	sess.run()
}

func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.keyID] == sess {
		delete(s.sessions, sess.keyID)
	}
	s.mu.Unlock()
	s.guard.drop(sess) // the session's place under its user and database limits
}

// handleCancel maps baton's cancel key to the backend running the session's statement.
func (s *Server) handleCancel(pkt []byte) {
	if len(pkt) < 12 {
		return
	}
	pid := binary.BigEndian.Uint32(pkt[4:8])
	secret := pkt[8:]
	if len(secret) != 4 {
		return
	}
	id := uint64(pid)<<32 | uint64(binary.BigEndian.Uint32(secret))
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return
	}
	sess.cancelMu.Lock()
	if be := sess.active.Load(); be != nil {
		s.sendCancel(be)
		sess.cancelMu.Unlock()
		return
	}
	if !sess.dispatching.Load() && !sess.prefixing.Load() {
		sess.cancelMu.Unlock()
		return // idle: nothing to cancel, as on PostgreSQL
	}
	// The statement has been read but not yet sent (a backend connection is being opened), or
	// baton's replays still run in front of it: cancel it once it runs, and answer the
	// CancelRequest only then.
	if sess.cancelWait == nil {
		sess.cancelWait = make(chan struct{})
	}
	wait := sess.cancelWait
	sess.cancelMu.Unlock()
	select {
	case <-wait:
	case <-time.After(cancelWaitMax):
	}
}

// cancelWaitMax bounds how long a CancelRequest waits for its statement to start.
const cancelWaitMax = 10 * time.Second

// sendCancel sends a CancelRequest for be's backend process to its node.
func (s *Server) sendCancel(be *backend) {
	c, err := be.node.dialCancel(be)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	msg := make([]byte, 12, 12+len(be.secret))
	binary.BigEndian.PutUint32(msg[0:], uint32(12+len(be.secret)))
	binary.BigEndian.PutUint32(msg[4:], pgwire.CodeCancelRequest)
	binary.BigEndian.PutUint32(msg[8:], be.pid)
	msg = append(msg, be.secret...)
	c.Write(msg)
	io.Copy(io.Discard, c) // the server closes when done
}

func (s *Server) classify(q string) router.Class { return s.classer.Classify(q) }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string {
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `''`) + `'`
	}
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}
