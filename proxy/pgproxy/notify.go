package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/proxy/pgwire"
)

// LISTEN without pinning (transaction pooling). A session's LISTEN or UNLISTEN, run outside a
// transaction block as a statement of its own, does not go to a pooled connection: baton keeps
// one listening connection per (primary node, database) whose channel set is the union of what
// its sessions listen to, answers the client as the server would once that connection has
// subscribed, and fans every NotificationResponse out to the sessions that listen on its
// channel. The session stays unpinned.
//
//   - A session delivers a notification where a direct connection would: while idle outside a
//     transaction block (the idle relay wakes), or at the end of a unit, before its
//     ReadyForQuery 'I'. Inside a transaction block notifications are held until it ends. A
//     session's own NOTIFY (or pg_notify) reaches it before that statement's (or its COMMIT's)
//     ReadyForQuery: baton waits for the listening connection to have received it
//     (notifyBarrier); one sent by a trigger arrives a moment later, while the session idles.
//   - The listening connection counts against the pool of its (node, user, database); it is
//     reset (RESET ALL, RESET ROLE) when it comes from the pool and closed when it is given up.
//   - Each session's queue of undelivered notifications is bounded (SetNotifyQueueLimit): a
//     client that does not read them is ended with FATAL 53200 rather than let baton's memory
//     grow (a direct server's queue is bounded too: at 8 GB its NOTIFY fails).
//   - The listening connection LISTENs when the first session wants a channel and UNLISTENs
//     when the last one leaves (UNLISTEN, DISCARD ALL, disconnect); with no channel left it is
//     closed.
//   - When that connection dies (the server terminated it, the node failed, or the node is no
//     longer the primary), the subscriptions are gone and notifications may have been lost:
//     every subscribed session ends with the server's FATAL (or 08006), as a direct connection
//     that held the LISTEN would. Re-subscribing silently would hide the lost notifications.
//   - LISTEN / UNLISTEN inside a transaction block (where they take effect only at COMMIT, and
//     not at all after ROLLBACK or ROLLBACK TO SAVEPOINT), in a multi-statement text, or while
//     the session already holds such a pinned LISTEN connection go to the server as before and
//     pin the session (relay.go idleListen). A channel it listens on both ways is delivered
//     once (the hub's copy). An UNLISTEN that reaches the server outside a transaction block
//     also drops the hub's subscriptions it names.
//   - pg_listening_channels() runs on whichever connection serves the statement and does not
//     list the hub's subscriptions.
//
// Locks: listener.cmd (one subscription change at a time) before listenHub.mu (the listeners)
// before listener.mu (the channel map) before noteQueue.mu.

// DefaultNotifyQueueBytes bounds a session's undelivered notifications unless
// SetNotifyQueueLimit says otherwise: about a thousand notifications of the largest payload
// (8000 bytes), far more of usual ones; only a client that stops reading, or a transaction that
// stays open through a flood of notifications, reaches it.
const DefaultNotifyQueueBytes = 8 << 20

// listenHub holds the listening connections of one server. The zero value is ready to use.
type listenHub struct {
	limit atomic.Int64 // per-session queue bound in bytes (0: DefaultNotifyQueueBytes)

	mu sync.Mutex
	ls map[listenKey]*listener
}

// SetNotifyQueueLimit bounds, in bytes, the notifications baton holds for one session that
// its client has not read yet (transaction pooling); beyond it the session ends with FATAL.
// n <= 0 restores the default (DefaultNotifyQueueBytes). Safe to call at any time.
func (s *Server) SetNotifyQueueLimit(n int64) { s.notify.limit.Store(n) }

func (h *listenHub) queueLimit(configured int64) int {
	if n := h.limit.Load(); n > 0 {
		return int(n)
	}
	if configured > 0 {
		return int(configured) // limits.max_notify_queue
	}
	return DefaultNotifyQueueBytes
}

type listenKey struct{ node, database string }

// listener is one listening backend connection and the sessions subscribed through it.
type listener struct {
	hub *listenHub
	srv *Server
	key listenKey
	np  *nodePool

	// cmd serialises subscription changes and the LISTEN/UNLISTEN exchanges they need; be is
	// set under it (once) and read by the reader goroutine after it started.
	cmd     sync.Mutex
	be      *backend
	replies chan []byte   // the reader's answer to the exchange in flight: nil ok, else the ErrorResponse
	done    chan struct{} // closed when the reader goroutine exited

	mu      sync.Mutex
	subs    map[string]map[*session]struct{} // channel → sessions; a channel is here iff the server listens on it
	pending *pendingSub                      // the subscription the LISTEN in flight makes
	dead    bool
}

// errListenerGone: the listening connection died while a subscription was being changed.
var errListenerGone = errors.New("pgproxy: the listening connection was lost")

// lookup returns the live listener of key, making an empty one when there is none (or only a
// dead one that lost has not yet forgotten).
func (h *listenHub) lookup(srv *Server, np *nodePool, key listenKey) *listener {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l := h.ls[key]; l != nil && !l.isDead() {
		return l
	}
	if h.ls == nil {
		h.ls = map[listenKey]*listener{}
	}
	l := &listener{hub: h, srv: srv, key: key, np: np, subs: map[string]map[*session]struct{}{}}
	h.ls[key] = l
	return l
}

// forget removes l from the hub (when it is still the listener of its key).
func (h *listenHub) forget(l *listener) {
	h.mu.Lock()
	if h.ls[l.key] == l {
		delete(h.ls, l.key)
	}
	h.mu.Unlock()
}

// subscribe adds s to channel ch on the primary's listener, making the server LISTEN when s is
// the first session that wants ch. It returns the listener, or an error: a server's
// ErrorResponse (*listenError) or why no listening connection could be had.
func (s *session) subscribe(ch string) (*listener, error) {
	for attempt := 0; attempt < 3; attempt++ {
		snap := s.srv.live.Load()
		p := snap.PrimaryNode()
		if p == nil {
			return nil, fmt.Errorf("cluster %q: %w", s.srv.config().Name, buffer.ErrNoPrimary)
		}
		np := s.srv.node(p.Name)
		if np == nil {
			return nil, errors.New("the primary is not configured")
		}
		l := s.srv.notify.lookup(s.srv, np, listenKey{node: p.Name, database: s.key.Database})
		err := l.add(s, ch)
		if errors.Is(err, errListenerGone) {
			continue // it died meanwhile: the next one dials afresh
		}
		return l, err
	}
	return nil, errListenerGone
}

// listenError is the server's ErrorResponse to baton's LISTEN.
type listenError struct{ frame []byte }

func (e *listenError) Error() string {
	return "LISTEN failed: " + pgwire.ErrorField(pgwire.Body(e.frame), 'M')
}

// add subscribes s to ch.
func (l *listener) add(s *session, ch string) error {
	l.cmd.Lock()
	defer l.cmd.Unlock()
	if l.be == nil {
		if err := l.open(s); err != nil {
			return err
		}
	}
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		return errListenerGone
	}
	if set := l.subs[ch]; set != nil {
		set[s] = struct{}{} // the server listens already
		l.mu.Unlock()
		return nil
	}
	// The reader subscribes s when the server's answer arrives, before it reads on: nothing
	// of ch sent after the LISTEN took effect is missed.
	l.pending = &pendingSub{ch: ch, s: s}
	l.mu.Unlock()
	err := l.exec("LISTEN " + quoteIdent(ch))
	if err != nil {
		l.mu.Lock()
		l.pending = nil
		l.mu.Unlock()
		l.closeIfEmpty()
	}
	return err
}

// barrier waits until the listening connection has received every notification committed
// before it was called: the server sends a listening backend's notifications before the
// ReadyForQuery of its next command, so an empty Query's answer comes after them.
func (l *listener) barrier() {
	l.cmd.Lock()
	defer l.cmd.Unlock()
	if l.be != nil && !l.isDead() {
		l.exec("") //nolint:errcheck // a failure ends the sessions through the reader
	}
}

// pendingSub is the subscription a LISTEN in flight makes.
type pendingSub struct {
	ch string
	s  *session
}

// remove unsubscribes s from ch ("" with all: from every channel), UNLISTENs the channels
// nobody wants any more, and closes the connection when none is left.
func (l *listener) remove(s *session, chans []string) {
	l.cmd.Lock()
	defer l.cmd.Unlock()
	var drop []string
	l.mu.Lock()
	for _, ch := range chans {
		if set := l.subs[ch]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(l.subs, ch)
				drop = append(drop, ch)
			}
		}
	}
	dead, empty := l.dead, len(l.subs) == 0
	l.mu.Unlock()
	if dead || l.be == nil {
		return
	}
	if empty {
		l.closeLocked()
		return
	}
	for _, ch := range drop {
		if l.exec("UNLISTEN "+quoteIdent(ch)) != nil {
			return // the reader ends the remaining sessions
		}
	}
}

// closeIfEmpty closes the connection when no channel is left (l.cmd held).
func (l *listener) closeIfEmpty() {
	l.mu.Lock()
	empty := len(l.subs) == 0 && !l.dead
	l.mu.Unlock()
	if empty {
		l.closeLocked()
	}
}

// closeLocked closes a listener nobody uses and waits for its reader (l.cmd held).
func (l *listener) closeLocked() {
	l.mu.Lock()
	l.dead = true
	l.mu.Unlock()
	l.hub.forget(l)
	if l.be != nil {
		l.be.conn.Close()
		<-l.done
	}
}

// open takes a connection to the listener's node for s's user and database and starts the
// reader (l.cmd held).
func (l *listener) open(s *session) error {
	cfg := s.srv.config()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Pool.AcquireTimeout.D()+cfg.Pool.ConnectTimeout.D())
	defer cancel()
	be, err := l.np.acquire(ctx, s.key)
	err = nodeDown(err)
	if err == nil && (be.settings != "" || be.keepState) {
		// Another session's settings (a statement_timeout, a role, idle_session_timeout …)
		// have no business on the listening connection.
		if _, failed, rerr := be.run("RESET ALL;RESET ROLE"); rerr != nil || failed {
			l.np.release(be, false)
			err = errors.New("could not reset a connection for LISTEN")
		}
	}
	if err != nil {
		l.mu.Lock()
		l.dead = true
		l.mu.Unlock()
		l.hub.forget(l)
		return err
	}
	l.be = be
	l.replies = make(chan []byte, 1)
	l.done = make(chan struct{})
	l.srv.wg.Add(1) // Shutdown waits for it: it ends when its last session leaves
	go func() {
		defer l.srv.wg.Done()
		l.read()
	}()
	return nil
}

// listenTimeout bounds one LISTEN/UNLISTEN exchange on the listening connection.
const listenTimeout = 10 * time.Second

// exec runs one LISTEN or UNLISTEN on the listening connection (l.cmd held). A failed
// exchange leaves the stream out of step: the connection is closed, which ends its sessions.
func (l *listener) exec(q string) error {
	l.be.conn.SetWriteDeadline(time.Now().Add(listenTimeout))
	_, err := l.be.w.Write(pgwire.AppendQuery(nil, q))
	if err == nil {
		err = l.be.w.Flush()
	}
	if err != nil {
		l.be.conn.Close()
		return fmt.Errorf("%w: %v", errListenerGone, err)
	}
	t := time.NewTimer(listenTimeout)
	defer t.Stop()
	select {
	case e := <-l.replies:
		if e != nil {
			return &listenError{frame: e}
		}
		return nil
	case <-l.done:
		select {
		case e := <-l.replies: // answered just before the connection ended
			if e != nil {
				return &listenError{frame: e}
			}
			return nil
		default:
		}
		return errListenerGone
	case <-t.C:
		l.be.conn.Close()
		return fmt.Errorf("%w: no answer to %s", errListenerGone, q)
	}
}

// primaryCheck is how often an idle listening connection checks that its node is still the
// primary (after a failover the old primary's notifications are not the cluster's).
const primaryCheck = time.Second

// read is the listener's reader goroutine: it fans notifications out, answers exec, and when
// the connection ends, ends the subscribed sessions.
func (l *listener) read() {
	be := l.be
	var fatal, failed []byte
	defer close(l.done)
	for {
		be.conn.SetReadDeadline(time.Now().Add(primaryCheck))
		_, err := be.rd.Peek1()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !l.isDead() {
				if snap := l.srv.live.Load(); snap != nil {
					if p := snap.PrimaryNode(); p == nil || p.Name != l.key.node {
						fatal = pgwire.AppendError(nil, pgwire.SevFatal, "08006", "baton: node "+l.key.node+" is no longer the primary; this session's LISTEN subscriptions are gone and notifications may have been lost")
						break
					}
				}
				continue
			}
			break
		}
		be.conn.SetReadDeadline(time.Now().Add(listenTimeout)) // the rest of a frame follows at once
		f, err := be.rd.Next()
		if err != nil {
			break
		}
		switch f[0] {
		case 'A':
			l.fanOut(f)
		case 'E':
			if pgwire.ErrorFatal(pgwire.Body(f)) {
				fatal = append([]byte(nil), f...) // the server's own reason; the socket closes next
				continue
			}
			failed = append([]byte(nil), f...)
		case 'Z':
			l.mu.Lock()
			if p := l.pending; p != nil && failed == nil && !l.dead {
				l.subs[p.ch] = map[*session]struct{}{p.s: {}}
			}
			l.pending = nil
			l.mu.Unlock()
			select {
			case l.replies <- failed:
			default: // nobody asked: out of step
				be.conn.Close()
			}
			failed = nil
		}
	}
	if fatal == nil {
		fatal = pgwire.AppendError(nil, pgwire.SevFatal, "08006", "baton: the server closed the connection that held this session's LISTEN")
	}
	be.close()
	l.np.release(be, false)
	l.lost(fatal)
}

// live reports whether the session's subscription through l still stands.
func (l *listener) live() bool { return l != nil && !l.isDead() }

func (l *listener) isDead() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dead
}

// lost ends every session still subscribed through l with fatal.
func (l *listener) lost(fatal []byte) {
	l.mu.Lock()
	l.dead = true
	subs := l.subs
	l.subs = map[string]map[*session]struct{}{}
	l.mu.Unlock()
	l.hub.forget(l)
	ended := map[*session]bool{}
	for _, set := range subs {
		for s := range set {
			if !ended[s] {
				ended[s] = true
				s.notes.lose(fatal)
				s.wakeNotes()
			}
		}
	}
}

// fanOut queues a NotificationResponse for every session that listens on its channel.
func (l *listener) fanOut(f []byte) {
	b := pgwire.Body(f)
	if len(b) < 4 {
		return
	}
	ch, _, ok := pgwire.CString(b[4:])
	if !ok {
		return
	}
	limit := l.hub.queueLimit(int64(l.srv.config().Limits.MaxNotifyQueue))
	l.mu.Lock()
	defer l.mu.Unlock() // (sessions leave under l.mu: none gets a frame after it left)
	for s := range l.subs[ch] {
		if !s.notes.add(f, limit) {
			s.client.SetWriteDeadline(time.Now().Add(time.Second)) // a write it blocks in fails soon
		}
		s.wakeNotes()
	}
}
