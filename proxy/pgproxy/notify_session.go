package pgproxy

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/router"
)

// The session's side of LISTEN without pinning (notify.go): its queue of notifications and
// where they are written, its LISTEN / UNLISTEN statements answered through the listener hub,
// and the replies baton makes for them.

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
