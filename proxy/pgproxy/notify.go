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
	"github.com/baton-proxy/baton/router"
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

func (h *listenHub) queueLimit() int {
	if n := h.limit.Load(); n > 0 {
		return int(n)
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
	limit := l.hub.queueLimit()
	l.mu.Lock()
	defer l.mu.Unlock() // (sessions leave under l.mu: none gets a frame after it left)
	for s := range l.subs[ch] {
		if !s.notes.add(f, limit) {
			s.client.SetWriteDeadline(time.Now().Add(time.Second)) // a write it blocks in fails soon
		}
		s.wakeNotes()
	}
}

// noteQueue holds the notifications of one session that its client has not been sent yet.
// Its methods are safe for concurrent use; wake is made by startRelay.
type noteQueue struct {
	wake chan struct{} // capacity 1: something was queued or the session was lost

	mu     sync.Mutex
	frames []byte
	paused bool   // a LISTEN is being answered: notifications wait for its reply
	lost   []byte // a FATAL to send, then end the session
	ended  bool   // lost was taken: nothing more is queued
}

// add queues frame f; false when the queue would exceed limit bytes: the session is then lost.
func (q *noteQueue) add(f []byte, limit int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.lost != nil || q.ended {
		return true
	}
	if len(q.frames)+len(f) > limit {
		q.frames = nil
		q.lost = pgwire.AppendError(nil, pgwire.SevFatal, "53200", fmt.Sprintf("baton: more than %d bytes of notifications are waiting for this client to read them; the session is ended so that they do not pile up (read notifications promptly, or raise the limit)", limit))
		return false
	}
	q.frames = append(q.frames, f...)
	return true
}

func (q *noteQueue) lose(fatal []byte) {
	q.mu.Lock()
	if q.lost == nil && !q.ended {
		q.lost = fatal
	}
	q.mu.Unlock()
}

func (q *noteQueue) pause(on bool) {
	q.mu.Lock()
	q.paused = on
	q.mu.Unlock()
}

// take returns the queued frames (when deliver and not paused) and, once, the FATAL that ends
// the session (when it was lost).
func (q *noteQueue) take(deliver bool) (frames, lost []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if deliver && !q.paused {
		frames, q.frames = q.frames, nil
	}
	if q.lost != nil {
		lost, q.lost, q.ended, q.frames = q.lost, nil, true, nil
	}
	return frames, lost
}

// takeFrames returns the queued frames when deliver and not paused; a loss stays for take.
func (q *noteQueue) takeFrames(deliver bool) []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !deliver || q.paused {
		return nil
	}
	frames := q.frames
	q.frames = nil
	return frames
}

// purge drops the queued notifications of the channels in chans (all of them when all): the
// server delivers nothing of a channel the session no longer listens on.
func (q *noteQueue) purge(chans map[string]bool, all bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if all {
		q.frames = nil
		return
	}
	kept := q.frames[:0]
	for f := range eachFrame(q.frames) {
		if ch, _, ok := pgwire.CString(pgwire.Body(f)[4:]); ok && chans[ch] {
			continue
		}
		kept = append(kept, f...)
	}
	q.frames = kept
}

// wakeNotes wakes the session's idle relay to deliver notifications.
func (s *session) wakeNotes() {
	select {
	case s.notes.wake <- struct{}{}:
	default:
	}
	if c := s.idleConn.Load(); c != nil {
		c.conn.SetReadDeadline(time.Now()) // the relay idles on a pinned LISTEN connection
	}
}

// writeNotes writes the notifications queued for the session to the client (without a flush)
// when tx, the session's transaction status, is idle. It runs where the client writer is
// owned: the relay, or the client loop while it relays a unit itself.
func (s *session) writeNotes(tx byte) {
	if s.notes.wake == nil {
		return
	}
	if frames := s.notes.takeFrames(tx == 'I'); len(frames) > 0 {
		s.cw.Write(frames)
	}
}

// deliverNotes writes and flushes the queued notifications (while idle in tx), and ends a lost
// session with its FATAL. Runs on the idle relay.
func (s *session) deliverNotes(tx byte) {
	frames, lost := s.notes.take(tx == 'I')
	if len(frames) > 0 {
		s.cw.Write(frames)
	}
	if lost != nil {
		s.cw.Write(lost)
		s.flush()
		s.clientGone()
		return
	}
	if len(frames) > 0 {
		s.flush()
	}
}

// notifyBarrier makes the session's own notifications reach it before the ReadyForQuery of
// the unit that sent them, as on a direct connection (notified: the unit, or the transaction
// it ends, may have run NOTIFY or pg_notify; a notification a trigger sends arrives a moment
// later, once the session is idle). Runs where the session's fields are owned.
func (s *session) notifyBarrier(u *unit, status byte) {
	if !s.notified && (u.class.Reason == "notify" || s.unitMentionsNotify(u)) {
		s.notified = true
	}
	if !s.notified || status != 'I' {
		return
	}
	s.notified = false
	done := map[*listener]bool{}
	for _, l := range s.listens {
		if !done[l] {
			done[l] = true
			l.barrier()
		}
	}
}

// unitMentionsNotify reports whether the unit's text, or a prepared statement it binds,
// mentions notify.
func (s *session) unitMentionsNotify(u *unit) bool {
	if mentionsNotify(u.frames) {
		return true
	}
	for f := range eachFrame(u.frames) {
		if f[0] == 'B' {
			if _, name, err := pgwire.BindMsg(pgwire.Body(f)); err == nil {
				if st := s.stmts[name]; st != nil && mentionsNotify([]byte(st.query)) {
					return true
				}
			}
		}
	}
	return false
}

// mentionsNotify reports whether b holds "notify" in any case.
func mentionsNotify(b []byte) bool {
	for i := 0; i+6 <= len(b); i++ {
		if b[i]|0x20 == 'n' && b[i+1]|0x20 == 'o' && b[i+2]|0x20 == 't' && b[i+3]|0x20 == 'i' &&
			b[i+4]|0x20 == 'f' && b[i+5]|0x20 == 'y' {
			return true
		}
	}
	return false
}

// sharedListen answers a unit that is one LISTEN / UNLISTEN (simple Query, or one Bind and
// Execute up to Sync) outside a transaction block through the listener hub; false when the
// unit must go to the server instead.
func (s *session) sharedListen(frames []byte, cls router.Class, openEnded bool) bool {
	if !s.txPooling || openEnded || s.txStatusNow() != 'I' || s.listen != nil || cls.Multi ||
		(cls.Reason != "listen" && cls.Reason != "unlisten") || len(frames) < 5 {
		return false
	}
	var text string
	if frames[0] == 'Q' {
		text, _ = pgwire.QueryMsg(pgwire.Body(frames))
	} else if text = s.listenGroupText(frames); text == "" {
		return false
	}
	t, ok := router.PGListenTarget(text)
	if !ok {
		return false
	}
	s.startRelay()
	s.notes.pause(true) // notifications wait until the client has the answer
	var fail []byte
	tag := "LISTEN"
	if t.Unlisten {
		tag = "UNLISTEN"
		s.unlisten(t)
	} else if !s.listens[t.Channel].live() {
		l, err := s.subscribe(t.Channel)
		var hold *buffer.Hold
		for err != nil && s.mayHold(err) {
			// No primary (a failover): wait in the failover buffer for the next one, as a
			// statement for the primary does. LISTEN writes nothing: the write lease is moot.
			if hold == nil {
				hold = s.srv.buf.Hold(func() bool { return true })
			}
			if err = hold.Wait(err); err == nil {
				l, err = s.subscribe(t.Channel)
			}
		}
		if hold != nil {
			hold.End()
		}
		var le *listenError
		switch {
		case errors.As(err, &le):
			fail = le.frame
		case err != nil:
			s.srv.metrics.errors.Add(1)
			fail = pgwire.AppendError(nil, pgwire.SevError, "57P03", "baton: "+err.Error())
		default:
			if s.listens == nil {
				s.listens = map[string]*listener{}
			}
			s.listens[t.Channel] = l
			s.publishListens()
		}
	}
	s.srv.metrics.count(router.Primary)
	s.push(&unit{synthetic: listenReply(frames, tag, fail), resume: true})
	return true
}

// live reports whether the session's subscription through l still stands.
func (l *listener) live() bool { return l != nil && !l.isDead() }

// unlisten drops the session's subscriptions that t names.
func (s *session) unlisten(t router.ListenTarget) {
	if len(s.listens) == 0 {
		return
	}
	by := map[*listener][]string{}
	gone := map[string]bool{}
	for ch, l := range s.listens {
		if t.All || ch == t.Channel {
			by[l] = append(by[l], ch)
			gone[ch] = true
			delete(s.listens, ch)
		}
	}
	s.publishListens()
	for l, chans := range by {
		l.remove(s, chans)
	}
	if len(gone) > 0 && s.notes.wake != nil {
		s.notes.purge(gone, len(s.listens) == 0)
	}
}

// publishListens makes the set of channels the session listens on through the hub readable by
// the idle relay (copy on write: LISTEN and UNLISTEN are rare).
func (s *session) publishListens() {
	set := make(map[string]bool, len(s.listens))
	for ch := range s.listens {
		set[ch] = true
	}
	s.hubChans.Store(&set)
}

// viaHub reports whether a NotificationResponse f is for a channel the session listens on
// through the hub: one that also arrives on a pinned LISTEN connection (a LISTEN of the same
// channel inside a transaction block) is dropped there, so that the client gets it once.
func (s *session) viaHub(f []byte) bool {
	set := s.hubChans.Load()
	if set == nil || len(*set) == 0 || len(f) < 10 {
		return false
	}
	ch, _, ok := pgwire.CString(pgwire.Body(f)[4:])
	return ok && (*set)[ch]
}

// unlistenAll drops every subscription of the session (DISCARD ALL, disconnect).
func (s *session) unlistenAll() { s.unlisten(router.ListenTarget{Unlisten: true, All: true}) }

// listenGroupText returns the text of the one LISTEN / UNLISTEN statement an extended-protocol
// group binds and executes, when the group holds nothing else baton would have to send to a
// server: Parses of that statement, Describes, one Bind without parameters, one Execute,
// Sync. "" otherwise.
func (s *session) listenGroupText(frames []byte) string {
	var text string
	parsed := map[string]string{}
	binds, execs := 0, 0
	for f := range eachFrame(frames) {
		switch f[0] {
		case 'P':
			name, q, err := pgwire.ParseMsg(pgwire.Body(f))
			rest := parseRest(pgwire.Body(f))
			if err != nil || len(rest) < len(q)+3 || rest[len(q)+1] != 0 || rest[len(q)+2] != 0 {
				return "" // declared parameter types: the server's answers depend on them
			}
			if _, exists := s.stmts[name]; exists && name != "" {
				return "" // the server refuses a second statement of that name (42P05)
			}
			parsed[name] = q
		case 'B':
			binds++
			_, name, err := pgwire.BindMsg(pgwire.Body(f))
			if err != nil || bindParams(pgwire.Body(f)) != 0 {
				return ""
			}
			if q, ok := parsed[name]; ok {
				text = q
			} else if st := s.stmts[name]; st != nil {
				text = st.query
			} else {
				return ""
			}
		case 'E':
			execs++
		case 'D', 'S':
		default:
			return ""
		}
	}
	if binds != 1 || execs != 1 || frames[len(frames)-5] != 'S' {
		return ""
	}
	for _, q := range parsed {
		if q != text {
			return ""
		}
	}
	// The statements the group parses exist for the session from now on.
	for f := range eachFrame(frames) {
		if f[0] == 'P' {
			s.recordParse(f)
		}
	}
	return text
}

// recordParse records a Parse the session's client sent that baton answered itself, so that
// a later Bind of it finds the statement (prepared on a connection when first needed).
func (s *session) recordParse(f []byte) {
	name, q, _ := pgwire.ParseMsg(pgwire.Body(f))
	if name == "" {
		s.stmtGen++
		s.stmts[""] = &stmt{gen: s.stmtGen, parse: append([]byte(nil), f...), query: q}
		return
	}
	rest := parseRest(pgwire.Body(f))
	srv := sharedName(rest)
	s.stmts[name] = &stmt{gen: sharedGen, srv: srv, parse: renamedParse(srv, rest), query: q}
}

// bindParams returns the parameter count of a Bind body (-1 when malformed).
func bindParams(b []byte) int {
	for range 2 { // portal, statement
		_, rest, ok := pgwire.CString(b)
		if !ok {
			return -1
		}
		b = rest
	}
	if len(b) < 2 {
		return -1
	}
	nf := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) < 2*nf+2 {
		return -1
	}
	b = b[2*nf:]
	return int(b[0])<<8 | int(b[1])
}

// listenReply is the server's answer to a LISTEN / UNLISTEN unit: for an extended-protocol
// group, each message's reply in order; fail (an ErrorResponse) replaces the Execute's
// CommandComplete, and the messages after it up to Sync are skipped, as the server does.
func listenReply(frames []byte, tag string, fail []byte) []byte {
	cc := pgwire.AppendFrame(nil, 'C', append([]byte(tag), 0))
	if frames[0] == 'Q' {
		if fail != nil {
			cc = fail
		}
		return pgwire.AppendReady(cc, 'I')
	}
	var out []byte
	skip := false
	for f := range eachFrame(frames) {
		if skip && f[0] != 'S' {
			continue
		}
		switch f[0] {
		case 'P':
			out = pgwire.AppendFrame(out, '1', nil)
		case 'B':
			out = pgwire.AppendFrame(out, '2', nil)
		case 'D':
			if kind, _, _ := pgwire.DescribeMsg('D', pgwire.Body(f)); kind == 'S' {
				out = pgwire.AppendFrame(out, 't', []byte{0, 0})
			}
			out = pgwire.AppendFrame(out, 'n', nil)
		case 'E':
			if fail != nil {
				out = append(out, fail...)
				skip = true
			} else {
				out = append(out, cc...)
			}
		case 'S':
			out = pgwire.AppendReady(out, 'I')
			skip = false
		}
	}
	return out
}
