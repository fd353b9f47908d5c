package myproxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/baton-proxy/baton/proxy/admit"
	"github.com/baton-proxy/baton/proxy/buffer"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/proxy/listen"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/proxy/netio"
	"github.com/baton-proxy/baton/proxy/pins"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// Classifier decides where a statement text may run. Safe for concurrent use.
type Classifier interface {
	Classify(sql string) router.Class
}

// Metrics are the server's counters. Safe for concurrent use.
type Metrics struct {
	Sessions, Accepted, Rejected, ToPrimary, ToReplica atomic.Int64
	misroutes, retries, errors, authFail               atomic.Int64
	gtidWaits, gtidFallbacks                           atomic.Int64 // read_your_writes (ryw.go)

	// Pinned counts the sessions holding each kind of pinned state now.
	Pinned pins.Counts
}

// Misroutes counts writes a replica refused that were resent to the primary.
func (m *Metrics) Misroutes() int64 { return m.misroutes.Load() }

// Retries counts reads resent elsewhere (replica failure or catalog lag).
func (m *Metrics) Retries() int64 { return m.retries.Load() }

// AuthFailures counts failed client logins.
func (m *Metrics) AuthFailures() int64 { return m.authFail.Load() }

func (m *Metrics) count(r router.Route) {
	if r == router.Replica {
		m.ToReplica.Add(1)
	} else {
		m.ToPrimary.Add(1)
	}
}

// Server serves one MySQL/MariaDB cluster on one listener.
type Server struct {
	st      atomic.Pointer[serverState] // configuration, node pools and credentials; swapped on reload
	live    *topology.Live
	classer Classifier
	log     *slog.Logger
	tlsConf *tls.Config
	sha2    *mywire.SHA2Cache
	rsaKey  *rsa.PrivateKey
	metrics Metrics

	writeGate func() bool    // the etcd write lease (nil: always allowed)
	buf       *buffer.Buffer // holds statements while there is no primary
	connID    atomic.Uint32

	ln       net.Listener
	draining atomic.Bool
	wg       sync.WaitGroup
	idler    netio.Idler // parked idle sessions (park.go)
	stop     chan struct{}
	ctx      context.Context // cancelled by Shutdown: bounds baton's own dials (learnServers)
	cancel   context.CancelFunc

	mu       sync.Mutex
	sessions map[*session]struct{}
	dbu      dbUsers    // users from the database: lookups and backend keys (authquery.go)
	guard    loginGuard // per-user limits and failed-login backoff (admit.go)
}

// NewServer builds a server for cl.
func NewServer(cl *topology.Cluster, live *topology.Live, c Classifier, tlsConf *tls.Config, log *slog.Logger) (*Server, error) {
	s := &Server{live: live, classer: c, log: log, tlsConf: tlsConf,
		sha2: mywire.NewSHA2Cache(), stop: make(chan struct{}), sessions: map[*session]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s.rsaKey = key
	s.apply(cl)
	s.buf = buffer.New(live, func() topology.Buffer { return s.config().Buffer })
	s.connID.Store(uint32(time.Now().Unix()) & 0xffffff)
	return s, nil
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

// Addr is the bound listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts clients until Shutdown.
func (s *Server) Serve() error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.wg.Add(3)
	go s.reaper()
	go s.parkSweep()
	go s.learnServers()
	return listen.Loop(s.ln, s.draining.Load, func() int { return s.config().Limits.MaxClients },
		listen.Counters{Sessions: &s.metrics.Sessions, Accepted: &s.metrics.Accepted, Rejected: &s.metrics.Rejected},
		&s.wg, s.serveConn, rejectTooMany)
}

// rejectTooMany answers a client over max_clients the way MySQL does (ER_CON_COUNT_ERROR).
func rejectTooMany(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	out, _ := mywire.AppendPacket(nil, 0, errPayload(1040, "08004", "Too many connections (baton max_clients)"))
	c.Write(out)
}

func errPayload(code uint16, state, msg string) []byte {
	p := []byte{0xff, byte(code), byte(code >> 8), '#'}
	p = append(p, state...)
	return append(p, msg...)
}

// learnServers connects once to each node, until one answers, as the monitoring user, so that
// the first clients' greeting already carries the servers' version and MariaDB extended
// capabilities (otherwise learned from the first backend connection a session makes).
func (s *Server) learnServers() {
	defer s.wg.Done()
	cl := s.config()
	if len(cl.Users) == 0 {
		return
	}
	u := cl.MonitorCredentials()
	for _, np := range s.nodeMap() {
		ctx, cancel := context.WithTimeout(s.ctx, cl.Pool.ConnectTimeout.D())
		be, err := np.dial(ctx, pool.Key{User: u.BackendUser, Database: cl.Database,
			Variant: variant(mywire.DefaultClientCaps, utf8mb4GeneralCI, 0)}, s.password(u.BackendUser), int(cl.Limits.MaxMessageSize))
		cancel()
		if err == nil {
			be.close()
			return
		}
		if s.ctx.Err() != nil {
			return
		}
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
// the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.draining.Swap(true) {
		return nil
	}
	if s.ln != nil {
		s.ln.Close()
	}
	close(s.stop)
	s.cancel()
	s.buf.Close()
	s.mu.Lock()
	for ss := range s.sessions {
		ss.interrupt() // wake idle (and parked) sessions so they leave
	}
	s.mu.Unlock()
	listen.Drain(ctx, &s.wg, func() {
		s.mu.Lock()
		for ss := range s.sessions {
			ss.closing.Store(true)
			s.idler.Wake(ss.client) // a parked session resumes, finds its client closed and ends
			ss.client.Close()
			if be := ss.active.Load(); be != nil {
				be.cc.Conn.Close()
			}
		}
		s.mu.Unlock()
	})
	for _, np := range s.nodeMap() {
		np.CloseAll()
	}
	return nil
}

// honouredExt are the MariaDB extended capabilities baton relays faithfully: extended metadata
// only changes column definitions, which baton counts but does not parse (except in the few
// result sets it reads or writes itself, which handle the extra field). Progress reports, bulk
// execution and metadata caching change the response stream: never offered.
const honouredExt = mywire.MariaDBClientExtendedMetadata

// advertisedExt are the MariaDB extended capabilities baton offers: what the cluster's servers
// offer (as learned from the newest backend connection, the primary's first) and baton honours.
func (s *Server) advertisedExt() uint32 {
	if p := s.live.Load().PrimaryNode(); p != nil {
		if np := s.node(p.Name); np != nil {
			if _, ext, ok := np.learned(); ok {
				return ext & honouredExt
			}
		}
	}
	for _, np := range s.nodeMap() {
		if _, ext, ok := np.learned(); ok {
			return ext & honouredExt
		}
	}
	return 0
}

// advertised are the capabilities baton offers clients (and honours).
func (s *Server) advertised() uint32 {
	c := uint32(mywire.ClientLongPassword | mywire.ClientFoundRows | mywire.ClientLongFlag |
		mywire.ClientConnectWithDB | mywire.ClientProtocol41 | mywire.ClientTransactions |
		mywire.ClientSecureConnection | mywire.ClientMultiStatements | mywire.ClientMultiResults |
		mywire.ClientPSMultiResults | mywire.ClientPluginAuth | mywire.ClientConnectAttrs |
		mywire.ClientPluginAuthLenencClientData | mywire.ClientSessionTrack | mywire.ClientDeprecateEOF)
	if s.tlsConf != nil {
		c |= mywire.ClientSSL
	}
	if s.config().LocalInfile {
		c |= mywire.ClientLocalFiles
	}
	return c
}

// greeting returns the capabilities and MariaDB extended capabilities of baton's greeting. A
// MariaDB server announces extended capabilities by clearing ClientLongPassword (CLIENT_MYSQL).
func (s *Server) greeting() (caps, ext uint32) {
	caps, ext = s.advertised(), s.advertisedExt()
	if ext != 0 {
		caps &^= mywire.ClientLongPassword
	}
	return caps, ext
}

// readRawPacket reads one packet straight from the socket (no read-ahead: TLS may follow).
func readRawPacket(c net.Conn, max int) ([]byte, byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, 0, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > max || n == 0xffffff {
		return nil, 0, errors.New("handshake response too large")
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c, p); err != nil {
		return nil, 0, err
	}
	return p, h[3], nil
}

func (s *Server) serveConn(c net.Conn) {
	c.SetDeadline(time.Now().Add(s.config().Limits.StartupTimeout.D()))
	id := s.connID.Add(1)
	adv, advExt := s.greeting()
	hs := &mywire.Handshake{ConnID: id, ServerVersion: s.serverVersion(), Caps: adv, ExtCaps: advExt,
		Charset: utf8mb4GeneralCI, Status: mywire.StatusAutocommit, AuthPlugin: "mysql_native_password", Salt: mywire.NewSalt()}
	out, _ := mywire.AppendPacket(nil, 0, hs.Append(nil))
	if _, err := c.Write(out); err != nil {
		c.Close()
		return
	}
	var conn net.Conn = c
	p, seq, err := readRawPacket(c, 64<<10)
	if err != nil {
		c.Close()
		return
	}
	isTLS := false
	if mywire.IsSSLRequest(p) {
		if s.tlsConf == nil {
			c.Close()
			return
		}
		tc := tls.Server(c, s.tlsConf)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return
		}
		conn, isTLS = tc, true
		if p, seq, err = readRawPacket(tc, 64<<10); err != nil {
			conn.Close()
			return
		}
	}
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(conn)
	fail := func(code uint16, state, msg string) {
		out, _ := mywire.AppendPacket(nil, seq+1, errPayload(code, state, msg))
		conn.Write(out)
		conn.Close()
	}
	if s.config().TLS.Require && !isTLS {
		fail(1045, "28000", "baton requires TLS (ssl-mode=REQUIRED)")
		return
	}
	resp, err := mywire.DecodeHandshakeResponse(p)
	if err != nil {
		fail(1043, "08S01", "Bad handshake")
		return
	}
	maxPacket := int(s.config().Limits.MaxMessageSize)
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(conn)
	r := mywire.NewPacketReader(br, maxPacket)
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	cred, fromDB, err := s.clientCred(resp.User)
	if err != nil {
		fail(1105, "HY000", errLookupText)
		return
	}
	auth := &mywire.ServerAuth{Handshake: hs, Resp: resp, Cred: cred, TLS: isTLS,
		RSAKey: s.rsaKey, ClientHost: host, Cache: s.sha2}
	release := s.admitter(auth, resp.User, fromDB) // limits and backoff: admit.go
	s.loginWait(c.RemoteAddr())
	// The exchange may take several round trips: write straight to the socket. An ERR packet
	// ends a failed login: the backoff counts it before the client can read it.
	fw := &admit.FailureWriter{W: conn, IsErr: mywire.IsERRPacket, Failed: func() { s.loginFailed(c.RemoteAddr()) }}
	if admitFn := auth.Admit; admitFn != nil {
		auth.Admit = func() *mywire.ERR { fw.Stop(); return admitFn() } // the password was right
	}
	if _, err := auth.Run(r, fw, seq+1); err != nil {
		release()
		if errors.Is(err, mywire.ErrAccessDenied) {
			s.metrics.authFail.Add(1)
			if !fw.Counted() {
				s.loginFailed(c.RemoteAddr())
			}
			s.log.Info("client authentication failed", "cluster", s.config().Name, "user", resp.User, "remote", c.RemoteAddr().String())
		}
		conn.Close()
		return
	}
	if err := bw.Flush(); err != nil {
		release()
		conn.Close()
		return
	}
	c.SetDeadline(time.Time{})
	u := s.sessionUser(resp.User, fromDB, auth)
	caps := resp.Caps & hs.Caps
	var ext uint32
	if resp.Caps&mywire.ClientLongPassword == 0 {
		ext = resp.ExtCaps & hs.ExtCaps
	}
	// Backends always track session state (track.go); relay re-encodes their OK packets for a
	// client that did not ask for it.
	// ClientLongPassword only says whether MariaDB extended capabilities follow (ext): it does
	// not change the format, and must not split the pool.
	backendCaps := caps&^(mywire.ClientSSL|mywire.ClientConnectWithDB|mywire.ClientConnectAttrs|mywire.ClientLongPassword) |
		mywire.ClientSessionTrack
	db := resp.Database
	sess := &session{srv: s, client: conn, r: r, br: br, w: bw, release: release, maxPacket: maxPacket, user: u, caps: caps, connID: id, hs: hs, tls: isTLS,
		extMeta:    ext&mywire.MariaDBClientExtendedMetadata != 0,
		key:        pool.Key{User: u.BackendUser, Database: db, Variant: variant(backendCaps, resp.Charset, ext)},
		conns:      map[*nodePool]*backend{},
		stmts:      map[uint32]*stmt{},
		autocommit: true,
		txPooling:  s.config().PoolModeOf(u) == topology.PoolTransaction,
	}
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	sess.run() // the session unregisters itself when it ends (cleanup), maybe on another goroutine after parking
}

// serverVersion is the version string of the cluster's servers (learned from a backend
// connection), so that clients see what they would see directly.
func (s *Server) serverVersion() string {
	snap := s.live.Load()
	if p := snap.PrimaryNode(); p != nil {
		if v := s.node(p.Name).serverVersion(); v != "" {
			return v
		}
	}
	for _, np := range s.nodeMap() {
		if v := np.serverVersion(); v != "" {
			return v
		}
	}
	return "5.5.5-10.11.0-MariaDB-baton"
}
