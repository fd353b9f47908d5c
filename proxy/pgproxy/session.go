package pgproxy

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/proxy/pins"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// histEntry is one session-state statement to replay on every backend the session uses.
type histEntry struct {
	sql     string
	discard bool // DISCARD ALL: also drops the backend's prepared statements
}

// stmt is a named (or the unnamed "") prepared statement of the session.
type stmt struct {
	gen   uint64
	parse []byte // the client's Parse frame, to re-prepare on another node
	query string
	// params, rows: the ParameterDescription and RowDescription (or NoData) frames the client
	// was told when it described the statement (nil until it did); shape.go.
	params, rows []byte
	srv          string // transaction pooling: the shared server-side name ("" = the client's own)
}

// unit is one routing unit handed from the client loop to the relay.
type unit struct {
	be        *backend
	frames    []byte // the client's frames, kept for a retry on another node
	class     router.Class
	retryable bool // a replica read outside a transaction, not yet answered: may move
	openEnded bool // sent before its Sync (Flush, or too large): stream, never hold
	synthetic []byte
	hist      *histEntry // session state to record when the unit succeeds
	dealloc   string     // protocol-level statement an SQL DEALLOCATE drops
	lsnProbe  bool       // read_your_writes: a WAL position query follows the unit
	replays   int        // replay Queries in front of the unit (each ends in ReadyForQuery)
	swallow   int        // injected ParseComplete/CloseComplete responses to drop
	// impliedSync: the unit ends in a Sync baton added because a Query followed the group
	// without one (a Query implies a Sync); its ReadyForQuery is not the client's.
	impliedSync atomic.Bool
	resume      bool   // a LISTEN baton answered: queued notifications may follow the answer (notify.go)
	failed      bool   // set by the relay before done: the unit got an error
	refused     []byte // set by prepare: answer the unit with this error instead (shape.go)
	done        chan struct{}
}

// session is one client connection. The client loop (run) reads and routes; the relay goroutine
// forwards backend responses. The loop only touches shared fields while no unit is outstanding
// (it waits on the last unit's done channel first), and the relay only while one is; the
// exceptions are the atomics and queue.
type session struct {
	srv  *Server
	txOn atomic.Pointer[nodePool] // the primary running the session's statement or open transaction (switchover drain)
	// lostOpen is a backend the relay found dead; the client loop ends a group still open on it.
	lostOpen atomic.Pointer[backend]
	client   net.Conn
	crd      *pgwire.MsgReader
	cw       *clientWriter
	user     *topology.User
	key      poolKey

	conns   map[*nodePool]*backend
	replica *backend // the replica connection reads prefer (session stickiness)
	sticky  string   // the replica node reads prefer when no connection to it is held
	// txPooling: pool_mode transaction; the session gives its connections back after each
	// unit that leaves it idle and unpinned (checkIn).
	txPooling bool
	keyCache  string // settingsKey's text, for keyVer history entries
	keyVer    int
	history   []histEntry
	histBase  int
	pending   []histEntry // session state set inside the open transaction
	stmts     map[string]*stmt
	stmtGen   uint64
	pins      router.Pin
	pinned    pins.Session          // what publishPins last reported
	forceNode *nodePool             // the next unit runs on this node (identity.go)
	signals   map[string]signalCall // prepared signals of baton process ids (identity.go)
	// serializable: the session's default isolation is SERIALIZABLE, which a hot standby
	// refuses: its reads go to the primary (txmode.go).
	serializable, startupSerializable bool
	roTx                              []string // a replica's read-only transaction that may still move (txmode.go)
	moveTx                            string   // replay that re-begins a moved transaction in front of the unit
	lsn                               uint64   // read_your_writes: WAL insert position after the session's last write
	// read_your_writes: the replica a wait proved to have replayed caughtLSN ("" none), and
	// when a wait on a replica last timed out.
	caught    string
	caughtLSN uint64
	missed    router.WaitMisses
	txStatus  byte
	txConn    *backend
	listen    *backend
	// listens: the channels the session listens on through the server's listeners (transaction
	// pooling, notify.go), and notes the notifications waiting to be sent to the client.
	listens  map[string]*listener
	notes    noteQueue
	notified bool                            // the open transaction may have sent a notification (notifyBarrier)
	hubChans atomic.Pointer[map[string]bool] // the channels of listens, for the idle relay

	group     []byte // extended-protocol frames buffered up to Sync
	openUnit  *unit  // a unit sent before its Sync; the rest of its frames follow it
	skipSync  bool   // a failed open-ended group: drop frames until Sync, then answer it
	implied   bool   // the next unit ends in baton's own Sync (syncBeforeQuery)
	last      *unit
	queue     chan *unit
	relayDone chan struct{}
	idleConn  atomic.Pointer[backend] // the LISTEN connection the idle relay is blocked reading
	startup   string                  // SETs for the client's startup parameters ("" if none)
	deadline  bool                    // a read deadline may be set on the client socket
	active    atomic.Pointer[backend]
	keyID     uint64
	closing   atomic.Bool
	// terminated: another session ran pg_terminate_backend of this session's process id.
	terminated atomic.Bool

	// Parking (park.go): waiting marks the client loop blocked on a client with nothing
	// outstanding; act counts what it read; kick asks the blocked read to end so that the
	// session parks; seenAct is the parking sweep's last look at act (sweep goroutine only).
	waiting atomic.Bool
	act     atomic.Uint64
	kick    atomic.Bool
	seenAct uint64

	dispatching atomic.Bool // a unit is being routed and sent (cancel requests wait for it)
	prefixing   atomic.Bool // baton's replays run in front of the unit; a cancel waits for them
	// cancelWait: a CancelRequest arrived before the client's statement started (guarded by
	// cancelMu). Its connection waits until the cancel is delivered or dropped: a client reuses
	// its connection only after its cancel is answered, so a cancel baton still held could
	// otherwise reach that connection's — or, after a pool hand-over, another client's — next
	// statement.
	cancelWait chan struct{}
	// cancelMu orders cancels and sends: a cancel is delivered to the server before the
	// session sends its next unit, so it can only reach the statement it was meant for.
	cancelMu sync.Mutex
}

func (s *session) startRelay() {
	if s.queue != nil {
		return
	}
	s.queue = make(chan *unit, 16)
	s.notes.wake = make(chan struct{}, 1)
	s.relayDone = make(chan struct{})
	go func() {
		defer close(s.relayDone)
		s.relay()
	}()
}

// push hands u to the relay.
func (s *session) push(u *unit) {
	s.startRelay()
	u.done = make(chan struct{})
	s.last = u
	s.queue <- u
	if c := s.idleConn.Load(); c != nil && u.be != c {
		c.conn.SetReadDeadline(time.Now()) // wake the relay's idle read
	}
}

// wait blocks until every pushed unit has been answered.
func (s *session) wait() {
	if s.last != nil {
		<-s.last.done
	}
}

func (s *session) outstanding() bool {
	if s.last == nil {
		return false
	}
	select {
	case <-s.last.done:
		return false
	default:
		return true
	}
}

// run runs the client loop until the client leaves or must be disconnected, and cleans up; or
// until the session parks (park.go), when the goroutine that resumes it runs it on.
func (s *session) run() {
	if s.loop() {
		return
	}
	s.cleanup()
}

// loop is the client loop; true when the session parked.
func (s *session) loop() (parked bool) {
	for {
		if s.srv.draining.Load() && s.openUnit == nil {
			s.wait()
			if s.txStatus == 'I' {
				s.fatal("57P01", "terminating connection because baton is shutting down")
				return false
			}
		}
		s.setReadDeadline()
		idle := !s.outstanding() && s.txStatus == 'I' // (outstanding first: txStatus is the relay's until then)
		if idle {
			s.waiting.Store(true) // the parking sweep may ask this read to end (park.go)
		}
		f, err := s.crd.Next()
		if idle {
			s.waiting.Store(false)
		}
		s.act.Add(1)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && !s.closing.Load() {
				s.deadline = true
				if s.terminated.Load() {
					s.wait()
					s.fatal("57P01", "terminating connection due to administrator command")
					return false
				}
				if s.srv.draining.Load() {
					continue
				}
				if s.kick.Swap(false) {
					if s.park() {
						return true
					}
					continue
				}
				if !s.outstanding() {
					s.fatal("57P05", "terminating connection due to idle timeout")
					return false
				}
				continue
			}
			if errors.Is(err, pgwire.ErrMessageTooLarge) {
				s.fatal("08P01", "message too large: "+strings.TrimPrefix(err.Error(), "pgwire: "))
				return false
			}
			var fe *pgwire.FormatError
			if errors.As(err, &fe) {
				s.fatal("08P01", "invalid frontend message: "+fe.Msg)
				return false
			}
			return false // EOF or a broken socket: the client left
		}
		if !s.handle(f) {
			return false
		}
	}
}

func (s *session) setReadDeadline() {
	var d time.Duration
	if !s.outstanding() {
		if s.txStatus == 'I' {
			d = s.srv.config().Limits.ClientIdleTimeout.D()
		} else {
			d = s.srv.config().Limits.IdleInTransactionTimeout.D()
		}
	}
	if d > 0 {
		s.client.SetReadDeadline(time.Now().Add(d))
		s.deadline = true
	} else if s.deadline {
		s.client.SetReadDeadline(time.Time{})
		s.deadline = false
	}
}

// handle processes one client frame; false ends the session.
func (s *session) handle(f []byte) bool {
	typ := f[0]
	if s.skipSync {
		if typ == 'S' {
			s.skipSync = false
			s.push(&unit{synthetic: pgwire.AppendReady(nil, s.txStatusNow())})
		} else if typ == 'X' {
			return false
		}
		return true
	}
	if s.openUnit != nil && s.lostOpen.Load() != nil && s.lostOpen.Swap(nil) == s.openUnit.be {
		s.openUnit = nil // its backend died: the rest of the group has nowhere to go
	}
	if s.openUnit != nil {
		switch typ {
		case 'P', 'B', 'D', 'E', 'C', 'H', 'S', 'd', 'c', 'f':
			if !s.writeBackend(s.openUnit.be, f) {
				return true
			}
			if typ == 'S' {
				s.openUnit = nil
			}
			return true
		}
	}
	switch typ {
	case 'Q':
		if (s.openUnit != nil || len(s.group) > 0) && !s.syncBeforeQuery() {
			return true // the group failed: the server ignores the Query until the client's Sync
		}
		q, err := pgwire.QueryMsg(pgwire.Body(f))
		if err != nil {
			s.fatal("08P01", err.Error())
			return false
		}
		if terminate, pid, ok := signalTarget(q); ok {
			s.wait()
			if s.signal(terminate, pid) {
				return !s.closing.Load()
			}
			if np := s.srv.pids.node(pid); np != nil && s.txStatusNow() == 'I' {
				s.forceNode = np // the process is one of baton's backends: signal it on its node
			}
		}
		cls := s.srv.classify(q)
		state, dealloc := "", ""
		if cls.SessionState {
			state = q
		}
		if cls.Reason == "deallocate" {
			dealloc = deallocName(q)
		}
		return s.dispatch(append([]byte(nil), f...), cls, false, state, dealloc)
	case 'P', 'B', 'D', 'E', 'C':
		s.group = append(s.group, f...)
		if len(s.group) > int(s.srv.config().Limits.MaxPipelineBytes) {
			return s.dispatchGroup(true)
		}
		return true
	case 'S':
		s.group = append(s.group, f...)
		return s.dispatchGroup(false)
	case 'H':
		s.group = append(s.group, f...)
		return s.dispatchGroup(true)
	case 'd', 'c', 'f':
		// COPY FROM STDIN data follows the unit that started the COPY.
		if s.last != nil && s.last.be != nil && s.outstanding() {
			s.writeBackend(s.last.be, f)
		}
		return true
	case 'F':
		return s.dispatch(append([]byte(nil), f...), router.Class{Route: router.Primary, Reason: "function-call"}, false, "", "")
	case 'X':
		return false
	default:
		s.fatal("08P01", "invalid frontend message type "+quoteByte(typ))
		return false
	}
}

func quoteByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return "'" + string(rune(b)) + "'"
	}
	return "0x" + string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
}

// syncFrame is a Sync message.
var syncFrame = []byte{'S', 0, 0, 0, 4}

// syncBeforeQuery ends the extended-protocol messages in front of a Query with a Sync of
// baton's own, so that every message keeps its order and its replies: the group runs (and
// commits, when it opened no transaction block) before the Query. When the group fails it
// returns false: the server would ignore the Query and everything else until the client's
// Sync, and baton does the same. It returns once the group has been answered.
func (s *session) syncBeforeQuery() bool {
	if u := s.openUnit; u != nil {
		s.openUnit = nil
		u.impliedSync.Store(true)
		if !s.writeBackend(u.be, syncFrame) {
			s.wait()
			s.skipSync = true
			return false
		}
		s.wait()
		if u.failed {
			s.skipSync = true
		}
		return !u.failed
	}
	s.group = append(s.group, syncFrame...)
	s.implied = true
	ok := s.dispatchGroup(false)
	s.wait()
	if !ok || s.skipSync || (s.last != nil && s.last.failed) {
		s.skipSync = true
		return false
	}
	return true
}

// writeBackend writes one frame to a backend that is already serving an outstanding unit.
func (s *session) writeBackend(be *backend, f []byte) bool {
	if be.broken {
		return false
	}
	if _, err := be.w.Write(f); err != nil {
		be.close()
		return false
	}
	if err := be.w.Flush(); err != nil {
		be.close()
		return false
	}
	return true
}

// fatal sends a FATAL error to the client (ordered after outstanding responses) and marks the
// session for closing.
func (s *session) fatal(code, msg string) {
	s.closing.Store(true)
	b := pgwire.AppendError(nil, pgwire.SevFatal, code, msg)
	if s.queue != nil {
		s.push(&unit{synthetic: b})
		s.wait()
		return
	}
	s.client.SetWriteDeadline(time.Now().Add(time.Second))
	s.cw.Write(b)
	s.cw.Flush()
}

// txStatusNow is the transaction status to report in a ReadyForQuery baton makes itself.
func (s *session) txStatusNow() byte {
	if s.txStatus == 0 {
		return 'I'
	}
	return s.txStatus
}

// cleanup ends the relay and returns or closes the session's backend connections.
func (s *session) cleanup() {
	s.closing.Store(true)
	clean := !s.outstanding() && s.openUnit == nil
	if !clean {
		// The client left mid-statement: cancel what runs and drop its connection, which ends
		// the relay's read. Only the relay touches s.conns until it has exited.
		if be := s.active.Load(); be != nil {
			s.srv.sendCancel(be)
			be.conn.Close()
		}
	}
	s.resolveCancel(nil) // a cancel still waiting cancels nothing now
	defer s.srv.metrics.Pinned.Publish(&s.pinned, 0)
	if s.queue != nil {
		close(s.queue)
		if c := s.idleConn.Load(); c != nil {
			c.conn.SetReadDeadline(time.Now())
		}
		<-s.relayDone
	}
	s.unlistenAll()   // the listener UNLISTENs what nobody wants any more
	s.cancelMu.Lock() // a cancel in flight reaches its connection before the pool hands it on
	s.cancelMu.Unlock()
	for np, be := range s.conns {
		np.release(be, clean && !be.broken && (s.txConn == nil || s.txConn != be))
	}
	s.conns = nil
	s.client.Close()
	s.srv.unregister(s)
}

// acquire returns the session's connection to np, taking one from the pool when needed.
func (s *session) acquire(np *nodePool) (*backend, error) {
	if np == nil {
		return nil, errors.New("the node was removed from the configuration")
	}
	if be := s.conns[np]; be != nil {
		if !be.broken && (be == s.txConn || be == s.listen || (be.rd.Buffered() == 0 && !pool.PeerClosed(be.NetConn()))) {
			return be, nil
		}
		if !be.broken && s.pins != 0 {
			// The server ended this connection while the session was idle, and it carried
			// state baton cannot rebuild elsewhere (temp tables, advisory locks, …): the client
			// must learn, as on a direct connection, with the server's own FATAL.
			return nil, &endSession{fatal: be.pendingFatal(), why: "the server closed the session's connection"}
		}
		s.drop(be) // nothing lived on it that a fresh connection cannot carry: reconnect
	}
	be, err := np.acquire(context.Background(), s.key)
	if err != nil {
		return nil, nodeDown(err)
	}
	be.applied = s.histBase
	if s.txPooling {
		// A connection another session used: bring its settings to this session's.
		if be.settings == s.settingsKey() {
			be.applied = len(s.history)
		} else {
			be.needReset = be.settings != ""
		}
		delete(be.stmts, "")
	}
	s.conns[np] = be
	return be, nil
}

// checkIn returns the session's backend connections to their pools after a unit (transaction
// pool mode), when nothing keeps the session on them: no open transaction, no pinned state, no
// LISTEN. The session's state is data (history, prepared statements, write position); the next
// unit brings whichever connection it gets up to it. Runs where the connections are owned: the
// relay before it answers the unit done, or the client loop while no unit is outstanding.
func (s *session) checkIn() {
	if !s.txPooling || s.txStatusNow() != 'I' || s.pins != 0 || s.listen != nil || s.closing.Load() {
		return
	}
	key := s.settingsKey()
	// A cancel being delivered to one of these connections (it found the statement running)
	// completes before the connection can serve anyone else.
	s.cancelMu.Lock()
	s.cancelMu.Unlock() // (a barrier: nothing to do inside)
	for np, be := range s.conns {
		delete(s.conns, np)
		// The connection keeps its settings and shared statements for the next session, which
		// reconciles them (shared.go); the reset query runs only when a session ends.
		be.keepState = true
		if be.applied == len(s.history) && !be.needReset {
			be.settings = key
		} else {
			be.settings = "\x00unknown"
		}
		delete(be.stmts, "") // the unnamed statement is this session's
		np.release(be, !be.broken)
	}
	s.replica = nil
}

// publishPins reports the session's pins to the metrics, and logs once per session and reason
// what pinned it (pinned sessions cannot leave their backend: operators want to know why).
func (s *session) publishPins() {
	if first := s.srv.metrics.Pinned.Publish(&s.pinned, s.pins); first != 0 {
		s.srv.log.Info("session pinned to its backend", "cluster", s.srv.config().Name, "user", s.user.Name,
			"remote", s.client.RemoteAddr().String(), "reasons", pins.Names(first))
	}
}

// endSession is an error that ends the client's session with a FATAL frame (the server's own
// where there is one): a connection that carried state baton cannot rebuild died between
// statements, or the server refused a startup parameter.
type endSession struct {
	fatal []byte
	why   string
}

func (e *endSession) Error() string { return e.why }

// pendingFatal reads the FATAL a server sent on an idle connection before closing it, or makes
// one when it sent none (a crash, a network failure).
func (be *backend) pendingFatal() []byte {
	be.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	defer be.conn.SetReadDeadline(time.Time{})
	for {
		f, err := be.rd.Next()
		if err != nil {
			return pgwire.AppendError(nil, pgwire.SevFatal, "08006", "baton: the server closed the connection that held this session's state (temporary tables, locks, LISTEN or a prepared cursor)")
		}
		if f[0] == 'E' && pgwire.ErrorFatal(pgwire.Body(f)) {
			return append([]byte(nil), f...)
		}
	}
}

// drop detaches a broken connection from the session.
func (s *session) drop(be *backend) {
	if s.conns[be.node] == be {
		delete(s.conns, be.node)
	}
	if s.replica == be {
		s.replica = nil
	}
	if s.listen == be {
		s.listen = nil
		s.pins &^= router.PinListen
	}
	be.node.release(be, false)
}
