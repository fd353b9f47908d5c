package myproxy

import (
	"context"
	"strings"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
)

// Session tracking of GTIDs (consistency read_your_writes, issue 9 item 6).
//
// Every backend connection negotiates CLIENT_SESSION_TRACK, whatever the client asked for, and
// on MariaDB adds last_gtid to session_track_system_variables. The OK packet of every statement
// that commits then carries the transaction's GTID, which baton reads instead of asking the
// server afterwards (an extra SELECT @@last_gtid would replace ROW_COUNT(), FOUND_ROWS(), the
// warnings and GET DIAGNOSTICS of the client's statement). A statement whose OK packets report
// no last_gtid committed nothing.
//
// What the client sees is what the server would have sent it directly: for a client without
// CLIENT_SESSION_TRACK every OK packet is re-encoded without session-state information (and
// without SERVER_SESSION_STATE_CHANGED); for a client with it, the last_gtid entries baton
// added are removed (the flag is cleared when nothing is left) — unless the client set
// session_track_system_variables itself: its own value then replaced baton's on the backend
// (it is session state, replayed), and the server reports exactly what the client asked for.

// trackGTIDs sets up last_gtid tracking on a new MariaDB connection (MySQL reports GTIDs
// through session_track_gtids, which baton does not use: its read_your_writes reads
// @@global.gtid_executed).
func (b *backend) trackGTIDs(ctx context.Context) error {
	if b.cc.Caps&mywire.ClientSessionTrack == 0 || !strings.Contains(b.cc.ServerVersion, "MariaDB") {
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
	if q == "-" { // the server tracks last_gtid (or everything) by default
		b.gtidTracked = true
		return nil
	}
	if err := b.roundTrip(mywire.ComQuery, []byte(q), timeout); err != nil {
		return err
	}
	b.gtidTracked, b.addedGTID = true, true
	return nil
}

// trackQuery returns the SET that adds last_gtid to the node's default tracking list, "-" when
// the default list has it, "" when not known yet.
func (p *nodePool) trackQuery() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.track
}

// learnTracking records the node's default session_track_system_variables value def and
// returns trackQuery's answer.
func (p *nodePool) learnTracking(def string) string {
	q := "-"
	tracksGTID := false
	for _, v := range strings.Split(def, ",") {
		if v = strings.TrimSpace(v); v == "*" || strings.EqualFold(v, "last_gtid") {
			tracksGTID = true
		}
	}
	if !tracksGTID {
		list := "last_gtid"
		if def != "" {
			list = def + ",last_gtid"
		}
		q = "SET SESSION session_track_system_variables = '" + strings.ReplaceAll(strings.ReplaceAll(list, `\`, `\\`), "'", "''") + "'"
	}
	p.mu.Lock()
	p.track = q
	p.mu.Unlock()
	return q
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
	if be.gtidTracked && !s.ownTracking {
		if g, found := mywire.TrackedGTIDs(ok.SessionState); found {
			u.gtid, u.gtidTracked = g, true
		}
	}
	switch {
	case s.caps&mywire.ClientSessionTrack == 0:
		ok.SessionState = nil
		ok.Status &^= mywire.StatusSessionStateChanged
	case be.addedGTID && !s.ownTracking:
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

// noteOwnTracking records that the session-state statement q sets session tracking itself.
func (s *session) noteOwnTracking(q string) {
	if strings.Contains(strings.ToLower(q), "session_track_system_variables") {
		s.ownTracking = true
	}
}
