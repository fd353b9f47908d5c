package myproxy

import (
	"context"
	"strings"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
)

// Session tracking of GTIDs (consistency read_your_writes, issue 9 item 6).
//
// Every backend connection negotiates CLIENT_SESSION_TRACK, whatever the client asked for, and
// on MariaDB has last_gtid in session_track_system_variables. The OK packet of every statement
// that commits then carries the transaction's GTID, which baton reads instead of asking the
// server afterwards (an extra SELECT @@last_gtid would replace ROW_COUNT(), FOUND_ROWS(), the
// warnings and GET DIAGNOSTICS of the client's statement). A statement whose OK packets report
// no last_gtid committed nothing.
//
// What the client sees is what the server would have sent it directly: for a client without
// CLIENT_SESSION_TRACK every OK packet is re-encoded without session-state information (and
// without SERVER_SESSION_STATE_CHANGED); for a client with it, the last_gtid entries are
// removed when baton added last_gtid to the list (the flag is cleared when nothing is left).
//
// A client may set session_track_system_variables itself (MariaDB Connector/J does at connect).
// After a statement that names the variable ran on a connection — the client's own, or its
// replay on another connection — baton reads the list the connection now has and adds
// last_gtid again when it is missing (backend.retrack); when the client's list has it, the
// client sees it, as directly.

// trackGTIDs sets up last_gtid tracking on a new MariaDB connection (MySQL reports GTIDs
// through session_track_gtids, which baton does not use: its read_your_writes reads
// @@global.gtid_executed).
func (b *backend) trackGTIDs(ctx context.Context) error {
	if !b.mayTrack() {
		return nil
	}
	timeout := posQueryTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	q := b.node.trackQuery()
	if q == "" {
		v, _, err := b.queryValue("SELECT @@session_track_system_variables", timeout)
		if err != nil {
			return err
		}
		q = b.node.learnTracking(v)
	}
	return b.applyTracking(q, timeout)
}

// mayTrack reports whether b can track last_gtid (a MariaDB server, CLIENT_SESSION_TRACK).
func (b *backend) mayTrack() bool {
	return b.cc.Caps&mywire.ClientSessionTrack != 0 && strings.Contains(b.cc.ServerVersion, "MariaDB")
}

// applyTracking runs the tracking SET q (trackSet's answer) and records the result.
func (b *backend) applyTracking(q string, timeout time.Duration) error {
	b.gtidTracked, b.addedGTID = false, false
	if q != "-" {
		if err := b.roundTrip(mywire.ComQuery, []byte(q), timeout); err != nil {
			return err
		}
		b.addedGTID = true
	}
	b.gtidTracked = true
	return nil
}

// retrack restores last_gtid tracking after a statement that set session_track_system_variables
// ran on b.
func (b *backend) retrack() error {
	if !b.mayTrack() || b.broken {
		return nil
	}
	b.gtidTracked, b.addedGTID = false, false
	v, null, err := b.queryValue("SELECT @@session_track_system_variables", posQueryTimeout)
	if err != nil || null {
		return err
	}
	return b.applyTracking(trackSet(v), posQueryTimeout)
}

// trackSet returns the SET that adds last_gtid to the tracking list def, or "-" when def tracks
// it already (by name or "*").
func trackSet(def string) string {
	for _, v := range strings.Split(def, ",") {
		if v = strings.TrimSpace(v); v == "*" || strings.EqualFold(v, "last_gtid") {
			return "-"
		}
	}
	list := "last_gtid"
	if def != "" {
		list = def + ",last_gtid"
	}
	return "SET SESSION session_track_system_variables = '" + strings.ReplaceAll(strings.ReplaceAll(list, `\`, `\\`), "'", "''") + "'"
}

// trackQuery returns trackSet's answer for the node's default tracking list ("" not known yet).
func (p *nodePool) trackQuery() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.track
}

// learnTracking records the node's default session_track_system_variables value def and
// returns trackSet's answer for it.
func (p *nodePool) learnTracking(def string) string {
	q := trackSet(def)
	p.mu.Lock()
	p.track = q
	p.mu.Unlock()
	return q
}

// setsTracking reports whether the statement text q (of class cls) may change
// session_track_system_variables: baton then re-tracks last_gtid after it.
func setsTracking(q string, cls router.Class) bool {
	return (cls.SessionState || cls.Pin != 0) && containsFold(q, "session_track_system_variables")
}

// containsFold reports whether s contains word (ASCII), ignoring ASCII case, without
// allocating. (A window of s with the byte length of an ASCII word folds to it only if it is
// that word in ASCII: a byte loop, as cheap as the first byte for most positions.)
func containsFold(s, word string) bool {
	if word == "" {
		return true
	}
	first := lowerASCII(word[0])
	for i := 0; i+len(word) <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		j := 1
		for j < len(word) && lowerASCII(s[i+j]) == lowerASCII(word[j]) {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// trackedOK handles an OK packet p of be's response to unit u (t has just decoded it): it
// records a tracked last_gtid in u and returns the payload to send to the client — p itself
// when nothing needs to change.
func (s *session) trackedOK(u *unit, be *backend, t *mywire.Tracker, p []byte) []byte {
	if be.cc.Caps&mywire.ClientSessionTrack == 0 {
		return p
	}
	ok := t.OK()
	if ok.Status&mywire.StatusSessionStateChanged == 0 && s.caps&mywire.ClientSessionTrack != 0 {
		return p
	}
	if be.gtidTracked {
		if g, found := mywire.TrackedGTIDs(ok.SessionState); found {
			u.gtid, u.gtidTracked = g, true
		}
	}
	switch {
	case s.caps&mywire.ClientSessionTrack == 0:
		ok.SessionState = nil
		ok.Status &^= mywire.StatusSessionStateChanged
	case be.addedGTID:
		ss, removed := mywire.StripTrackedVariable(ok.SessionState, "last_gtid")
		if !removed {
			return p
		}
		ok.SessionState = ss
		if len(ss) == 0 {
			ok.Status &^= mywire.StatusSessionStateChanged
		}
	default:
		return p
	}
	return mywire.AppendOKPayload(nil, *ok, s.caps, p[0] == 0xfe)
}

// retrack runs backend.retrack after the client's statement; a failure leaves be untracked
// (read_your_writes then asks the server for the position) or, on an I/O error, drops it.
func (s *session) retrack(be *backend) {
	if err := be.retrack(); err != nil {
		s.srv.log.Warn("restoring last_gtid tracking failed", "cluster", s.srv.config().Name, "node", be.node.name, "error", err)
		if be.broken {
			s.drop(be)
		}
	}
}
