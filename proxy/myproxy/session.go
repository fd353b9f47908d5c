package myproxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/proxy/pins"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// session is one client connection; one goroutine runs it (MySQL has no asynchronous server
// messages, so the command loop relays each response itself).
type session struct {
	srv     *Server
	txOn    atomic.Pointer[nodePool] // the primary running the session's statement or open transaction (switchover drain)
	client  net.Conn
	r       *mywire.PacketReader // reads from br
	br      *bufio.Reader        // nil while parked, as r and w (park.go)
	w       *bufio.Writer
	release func() // ends the session's count against its user's connection limit (admit.go)

	maxPacket int // the client packet limit of r
	user      *topology.User
	caps      uint32            // negotiated with the client
	extMeta   bool              // MariaDB extended metadata negotiated with the client
	hs        *mywire.Handshake // the greeting: its scramble also serves COM_CHANGE_USER
	tls       bool
	connID    uint32
	key       pool.Key

	conns      map[*nodePool]*backend
	replica    *backend // the replica reads prefer
	last       *backend // the connection that ran the previous statement (its warnings, ROW_COUNT …)
	varsFrom   *backend // a replica connection where GET DIAGNOSTICS set vars (diag.go)
	vars       []string
	history    []string // session state replayed on every backend (SET …, USE …)
	stmts      map[uint32]*stmt
	nextStmt   uint32
	pins       router.Pin
	pinned     pins.Session // what publishPins last reported
	wrote      bool         // read_your_writes: the session wrote and baton could not learn where: it reads from the primary from then on
	gtid       string       // read_your_writes: position of the session's writes (MariaDB GTID list; a MySQL GTID set when gtidMy)
	gtidMy     bool
	caughtUp   string            // read_your_writes: the replica a wait proved to hold gtid ("" none)
	missed     router.WaitMisses // read_your_writes: when a wait on a replica last timed out
	inTx       bool
	txConn     *backend
	autocommit bool
	status     uint16 // last server status reported to the client

	// Transaction pooling (txpool.go): the session gives its connections back after each
	// command that leaves nothing on them (checkIn).
	txPooling bool
	sticky    string // the replica node reads prefer ("" none)
	nextTx    bool   // a SET TRANSACTION waits for the session's next transaction
	xa        bool   // an XA transaction is open (started, ended or prepared): pinstate.go
	// What a later statement may ask about the previous one, kept as data: whether it left
	// warnings or an error (lastCond: its connection is kept), ROW_COUNT(), FOUND_ROWS(),
	// the session's LAST_INSERT_ID(), and the connection and use that ran it.
	lastCond  bool
	condConn  *backend // the connection holding those warnings or that error
	rowCount  int64
	foundRows uint64
	insertID  uint64
	lastRan   *backend // compared only, never used: it may be another session's by now
	lastStale bool     // baton ran a statement of its own after the client's on its connection
	lastUses  uint64
	pinState  pinState // what keeps each pin (pinstate.go)
	// userVars: the session set user variables baton replays (SET @v = literal); its reads
	// stay on the primary, as with any user variable.
	userVars bool

	rseq    byte // sequence id of the first packet of the answer to the current command
	scratch []byte
	held    []byte

	active  atomic.Pointer[backend]
	closing atomic.Bool

	// Parking (park.go): parkState says whether the loop waits for the client with nothing
	// outstanding (parkWaiting) and whether the sweep asked the wait to end (parkKicked);
	// parkMu orders the sweep's deadline before the loop's clearing of it; act counts the
	// loop's reads; seenAct is the sweep's last look at act (under srv.mu).
	parkState atomic.Int32
	parkMu    sync.Mutex
	act       atomic.Uint64
	seenAct   uint64
}

// stmt is a prepared statement under baton's own id.
type stmt struct {
	id       uint32
	query    string
	class    router.Class
	params   uint16
	types    []byte   // parameter types of the last execution that sent them (2 bytes each)
	cursor   *backend // where an open cursor lives (COM_STMT_FETCH follows it)
	longData *backend // where COM_STMT_SEND_LONG_DATA went since the last execution
	// toks: query's tokens, lexed at the first execution that needs them (unitTokens).
	toks   []sqlTok
	tokOK  bool
	tokSet bool
}

// Error codes of the ERR packets baton makes itself. Only server codes (1000–1999, 3000+):
// clients treat a code of their own range (2000–2999) in an ERR packet as a malformed packet.
const (
	errBaton            = 1105 // ER_UNKNOWN_ERROR: failures of baton itself
	errConnectionKilled = 1927 // ER_CONNECTION_KILLED, SQLSTATE 08S01: the session's backend went away
)

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
		s.maybeDrain()
		if s.closing.Load() {
			return false
		}
		kicked, err := s.awaitCommand()
		var p []byte
		var seq byte
		if err == nil {
			p, seq, err = s.r.Next()
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !s.closing.Load() {
				if s.srv.draining.Load() {
					continue
				}
				if kicked {
					if s.park() {
						return true
					}
					continue
				}
			}
			if errors.Is(err, mywire.ErrPacketTooLarge) {
				s.writeErr(seq+1, 1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes (baton limits.max_message_size)")
				s.w.Flush()
			}
			return false
		}
		// A command of 16 MiB or more arrives in parts; the reader reports the last part's id.
		if first := seq - byte(len(p)/mywire.MaxPayload); first != 0 {
			s.writeErr(seq+1, 1156, "08S01", "Got packets out of order")
			s.w.Flush()
			return false
		}
		s.rseq = seq + 1
		if len(p) == 0 {
			s.writeErr(s.rseq, 1047, "08S01", "Unknown command")
			s.w.Flush()
			return false
		}
		if p[0] != mywire.ComQuit && !s.checkIdleConns() {
			s.w.Flush()
			return false
		}
		if !s.command(p) {
			return false
		}
		s.checkIn()
		s.publishPins()
		if err := s.w.Flush(); err != nil {
			return false
		}
	}
}

// maybeDrain closes an idle session (outside a transaction) once the server is draining.
func (s *session) maybeDrain() {
	if s.srv.draining.Load() && !s.inTx {
		s.closing.Store(true)
	}
}

// command handles one client command; false ends the session.
func (s *session) command(p []byte) bool {
	switch p[0] {
	case mywire.ComQuit:
		return false
	case mywire.ComPing:
		s.writeOK(s.rseq, 0, 0)
	case mywire.ComQuery:
		q := string(p[1:])
		if id, query, ok := killOf(q); ok {
			s.kill(id, query)
			break
		}
		if col, ok := connectionIDQuery(q); ok {
			s.answerConnectionID(col)
			break
		}
		if fn, col, ok := lastStatementQuery(q); ok && s.txPooling && (s.lastStale || s.last == nil && !s.inTx) {
			s.answerLastStatement(fn, col) // its connection went back to the pool (txpool.go)
			break
		}
		cls := s.srv.classer.Classify(q)
		state := ""
		if cls.SessionState && (!cls.Multi || s.caps&mywire.ClientMultiStatements != 0) {
			// (Several statements, all session state, replay as one text: every backend
			// connection of the session negotiated multi-statements, as the client did.)
			state = q
		} else if cls.SessionState {
			s.pins |= router.PinOther // state baton cannot replay exactly: stay on the primary
		}
		u := &unit{cmd: p, class: cls, state: state, retrack: setsTracking(q, cls), text: q}
		if vars, ok := replayableUserSet(q); ok && cls.Pin == router.PinUserVar && !cls.Multi {
			// SET @v = literal: replayed like SET SESSION, not a pin (pinstate.go).
			u.class.Pin, u.state = 0, q
			u.onDone = func(*backend, *mywire.Tracker) {
				s.pinState.forgetVars(vars)
				s.userVars = true
			}
		}
		s.unpinCalcFound(u)
		s.exec(u)
		s.noteSetTransaction(cls, u.t == nil || u.t.Err() != nil)
	case mywire.ComInitDB:
		db := string(p[1:])
		s.exec(&unit{cmd: p, class: router.Class{Route: router.Primary, Reason: "init-db", SessionState: true},
			state: "USE `" + strings.ReplaceAll(db, "`", "``") + "`"})
	case mywire.ComStmtPrepare:
		s.prepareStmt(p)
	case mywire.ComStmtExecute:
		s.executeStmt(p)
	case mywire.ComStmtSendLongData:
		s.sendLongData(p)
	case mywire.ComStmtClose:
		s.closeStmt(p)
	case mywire.ComStmtReset:
		s.resetStmt(p)
	case mywire.ComStmtFetch:
		s.fetchStmt(p)
	case mywire.ComResetConnection:
		s.resetSession()
		s.writeOK(s.rseq, 0, 0)
	case mywire.ComSetOption:
		// Multi-statement on/off for this connection only; it cannot be replayed as SQL, so the
		// session stays on the primary from now on.
		s.exec(&unit{cmd: p, class: router.Class{Route: router.Primary, Reason: "set-option", Pin: router.PinOther}})
	case mywire.ComFieldList, mywire.ComStatistics:
		s.exec(&unit{cmd: p, class: router.Class{Route: router.Primary, Reason: "command"}})
	case mywire.ComProcessKill: // mysql_kill(): KILL CONNECTION of a 4-byte thread id
		if len(p) < 5 {
			s.writeErr(s.rseq, 1835, "HY000", "Malformed communication packet")
			break
		}
		s.kill(uint64(binary.LittleEndian.Uint32(p[1:5])), false)
	case mywire.ComChangeUser:
		return s.changeUser(p)
	case mywire.ComBinlogDump:
		s.writeErr(s.rseq, errBaton, "HY000", "baton does not proxy replication connections")
		return false
	default:
		s.writeErr(s.rseq, 1047, "08S01", "Unknown command")
	}
	return !s.closing.Load()
}

func (s *session) writeErr(seq byte, code uint16, state, msg string) {
	out, _ := mywire.AppendPacket(nil, seq, errPayload(code, state, msg))
	s.w.Write(out)
}

func (s *session) writeOK(seq byte, affected, lastID uint64) {
	out := mywire.AppendOK(nil, seq, mywire.OK{AffectedRows: affected, LastInsertID: lastID, Status: s.statusNow()}, s.caps)
	s.w.Write(out)
}

// statusNow is the status baton reports in an answer of its own: the server's last flags (they
// carry NO_BACKSLASH_ESCAPES, which clients use to escape), with the transaction bits current.
func (s *session) statusNow() uint16 {
	st := s.status &^ (mywire.StatusInTrans | mywire.StatusAutocommit | mywire.StatusInTransReadonly |
		mywire.StatusMoreResultsExists | mywire.StatusCursorExists | mywire.StatusLastRowSent | mywire.StatusSessionStateChanged)
	if s.autocommit {
		st |= mywire.StatusAutocommit
	}
	if s.inTx {
		st |= mywire.StatusInTrans
	}
	return st
}

// placement is what node choice needs to know of the session outside a transaction, as of
// snap: in read_your_writes mode, replicas not known to hold the session's writes are avoided.
func (s *session) placement(snap *topology.Snapshot, avoid map[*nodePool]bool) router.Placement {
	cl := s.srv.config()
	p := router.Placement{
		Pinned:        s.pins != 0 || s.userVars || !s.autocommit || (s.wrote && cl.Consistency == topology.ReadYourWrites),
		Consistency:   cl.Consistency,
		StateFull:     len(s.history) >= cl.Limits.MaxSessionState,
		PrimaryWeight: cl.PrimaryReadWeight,
	}
	if s.replica != nil && !s.replica.broken {
		p.Sticky = s.replica.node.name
	} else if s.sticky != "" {
		p.Sticky = s.sticky
	}
	behind := s.behind(snap)
	if avoid != nil || behind != nil {
		p.Avoid = func(name string) bool { return avoid[s.srv.node(name)] || behind[name] }
	}
	return p
}

// pick chooses the node for a unit.
func (s *session) pick(cls router.Class, avoid map[*nodePool]bool) (*nodePool, router.Route, error) {
	if s.inTx && s.txConn != nil {
		if s.txConn.broken {
			return nil, 0, errors.New("the connection holding this transaction was lost")
		}
		return s.txConn.node, router.Primary, nil
	}
	snap := s.srv.live.Load()
	p := s.placement(snap, avoid)
	name, route, ok := router.Place(snap, cls, p, router.Spread) // sessions dealt over the nodes
	if !ok {
		return nil, router.Primary, fmt.Errorf("cluster %q: %w", s.srv.config().Name, buffer.ErrNoPrimary)
	}
	if route == router.Primary && router.ReadsPrimary(cls, p) && s.behind(snap) == nil {
		// primary_read_weight: the read was drawn to the primary; the session's reads stay
		// there as they stay on a replica. (Not when replicas were passed over for lacking the
		// session's writes: it returns to its replica once that has caught up.)
		s.replica, s.sticky = nil, name
	}
	return s.srv.node(name), route, nil
}

// acquire returns the session's connection to np, taking one from the pool when needed.
func (s *session) acquire(np *nodePool) (*backend, error) {
	if np == nil {
		return nil, errors.New("the node was removed from the configuration")
	}
	if be := s.conns[np]; be != nil {
		if !be.broken {
			return be, nil
		}
		s.drop(be)
	}
	s.releaseCondConn(np)
	be, err := np.Acquire(context.Background(), s.key)
	if errors.Is(err, pool.ErrTimeout) {
		return nil, fmt.Errorf("node %s: %w", np.name, err) // which node's pool is full
	}
	if err != nil {
		return nil, nodeDown(err)
	}
	s.reconcile(be) // what the connection carries against the session's state (txpool.go)
	s.conns[np] = be
	return be, nil
}

// drop detaches a broken connection.
func (s *session) drop(be *backend) {
	if s.conns[be.node] == be {
		delete(s.conns, be.node)
	}
	if s.replica == be {
		s.replica = nil
	}
	if s.last == be {
		s.last = nil
	}
	if s.varsFrom == be {
		s.varsFrom, s.vars = nil, nil
	}
	if s.condConn == be {
		s.condConn = nil
	}
	if s.txConn == be {
		s.txConn, s.inTx = nil, false
	}
	be.node.Release(be, be.key, false)
}

// resetSession is COM_RESET_CONNECTION: the session starts afresh (connections go back to
// the pool, which resets them).
func (s *session) resetSession() {
	for np, be := range s.conns {
		s.noteHist(be)
		np.Release(be, be.key, !be.broken)
	}
	s.conns = map[*nodePool]*backend{}
	s.replica, s.last, s.txConn, s.inTx, s.condConn = nil, nil, nil, false, nil
	s.varsFrom, s.vars = nil, nil
	s.history = nil
	s.stmts = map[uint32]*stmt{}
	s.pins = 0
	s.pinState, s.userVars = pinState{}, false
	s.autocommit = true
	s.nextTx, s.xa, s.lastCond, s.rowCount, s.foundRows, s.insertID, s.lastRan = false, false, false, 0, 0, 0, nil
}

// publishPins reports the session's pins to the metrics, and logs once per session and reason
// what pinned it.
func (s *session) publishPins() {
	if first := s.srv.metrics.Pinned.Publish(&s.pinned, s.pins); first != 0 {
		s.srv.log.Info("session pinned to its backend", "cluster", s.srv.config().Name, "user", s.user.Name,
			"remote", s.client.RemoteAddr().String(), "reasons", pins.Names(first))
	}
}

func (s *session) cleanup() {
	s.closing.Store(true)
	s.srv.metrics.Pinned.Publish(&s.pinned, 0)
	for np, be := range s.conns {
		s.noteHist(be)
		np.Release(be, be.key, !be.broken && !s.inTx)
	}
	s.conns = nil
	s.client.Close()
	s.srv.mu.Lock()
	delete(s.srv.sessions, s)
	s.srv.mu.Unlock()
	if s.release != nil {
		s.release()
	}
}
