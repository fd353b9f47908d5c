package pgproxy

import (
	"strings"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/router"
)

// Transaction modes a hot standby refuses. A session whose default isolation is SERIALIZABLE
// reads on the primary (a standby answers 0A000 "cannot use serializable mode in a hot
// standby"), and a read-only transaction that a replica started moves to the primary when the
// client turns it read-write or serializable before its first query — the only time PostgreSQL
// allows either.

// normSQL lower-cases q and folds white space, for the few textual checks below.
func normSQL(q string) string { return strings.Join(strings.Fields(strings.ToLower(q)), " ") }

// serializableSetting reports how a session-state statement (n: its normSQL text) changes the
// session's default isolation: known is false when it does not touch it.
func serializableSetting(n string) (serializable, known bool) {
	switch {
	case strings.Contains(n, "default_transaction_isolation"), strings.Contains(n, "session characteristics"):
		return strings.Contains(n, "serializable"), true
	case strings.HasPrefix(n, "reset all"), strings.HasPrefix(n, "discard all"):
		return false, true
	}
	return false, false
}

// startupSerializable reports whether the startup parameters make the session serializable.
func startupSerializable(params map[string]string) bool {
	v := params["default_transaction_isolation"]
	for _, kv := range parseOptions(params["options"]) {
		if kv[0] == "default_transaction_isolation" && params["default_transaction_isolation"] == "" {
			v = kv[1]
		}
	}
	return strings.EqualFold(strings.TrimSpace(v), "serializable")
}

// noteSessionState updates the session's default-isolation flag after a session-state
// statement succeeded.
func (s *session) noteSessionState(q string) {
	n := normSQL(q)
	ser, known := serializableSetting(n)
	if !known {
		return
	}
	if strings.HasPrefix(n, "reset") || strings.HasPrefix(n, "discard") || strings.HasSuffix(n, "to default") || strings.HasSuffix(n, "= default") {
		ser = s.startupSerializable // back to the startup packet's value
	}
	s.serializable = ser
}

// unitText is the text of the one statement a unit runs ("" when it is not one known text).
func unitText(frames []byte) string {
	if len(frames) < 5 {
		return ""
	}
	if frames[0] == 'Q' {
		q, _ := pgwire.QueryMsg(pgwire.Body(frames[:1+be32(frames[1:])]))
		return q
	}
	var text string
	binds := 0
	for f := range eachFrame(frames) {
		switch f[0] {
		case 'P':
			if _, q, err := pgwire.ParseMsg(pgwire.Body(f)); err == nil {
				text = q
			}
		case 'B':
			binds++
		}
	}
	if binds != 1 {
		return ""
	}
	return text
}

// trackReadOnlyTx records, after each unit, the statements of a read-only transaction that a
// replica runs while no query has run in it yet (so that it can still move).
func (s *session) trackReadOnlyTx(u *unit, status, startTx byte) {
	switch {
	case status != 'T':
		s.roTx = nil
	case startTx == 'I' && u.class.Tx == router.TxBeginReadOnly && u.be.node != nil && !s.onPrimary(u.be):
		if q := unitText(u.frames); q != "" {
			s.roTx = []string{q}
		}
	case s.roTx != nil && (u.class.Reason == "set-transaction" || u.class.Reason == "set-local"):
		s.roTx = append(s.roTx, unitText(u.frames))
	default:
		s.roTx = nil // a query ran: the transaction's mode is fixed now
	}
}

// onPrimary reports whether be is a connection to the current primary.
func (s *session) onPrimary(be *backend) bool {
	snap := s.srv.live.Load()
	p := snap.PrimaryNode()
	return p != nil && be.node != nil && p.Name == be.node.name
}

// needsWritableTx reports whether a SET TRANSACTION asks for what a standby refuses.
func needsWritableTx(q string) bool {
	n := normSQL(q)
	return strings.Contains(n, "read write") || strings.Contains(n, "serializable")
}

// moveReadOnlyTx moves the open read-only transaction from its replica to the primary: it is
// rolled back there and begun again, with its earlier SET TRANSACTION / SET LOCAL statements,
// in front of the unit (their answers already reached the client). It returns the replay text,
// or "" when the transaction cannot move.
func (s *session) moveReadOnlyTx() string {
	be := s.txConn
	if be == nil || s.roTx == nil {
		return ""
	}
	for _, q := range s.roTx {
		if q == "" {
			return ""
		}
	}
	if _, _, err := be.run("ROLLBACK"); err != nil {
		s.drop(be)
	}
	replay := strings.Join(s.roTx, ";")
	s.roTx = nil
	s.txConn = nil // txStatus stays 'T': the unit runs where its class says, the primary
	return replay
}
