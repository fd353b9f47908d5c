package pgproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/baton-proxy/baton/router"
)

// Pins end when their state is gone, not only at the statements the classifier knows clear all
// of it (DISCARD TEMP, pg_advisory_unlock_all(), CLOSE ALL, DEALLOCATE ALL): a session that
// drops its last temporary table, releases its last advisory lock, closes its last WITH HOLD
// cursor or deallocates its last SQL-prepared statement is free to move again. Which of them
// still hold state is the server's knowledge, so baton asks it — once, after a unit that may
// have dropped some (its text names one of the ways state goes), on the connection holding it,
// and only for pinned sessions. A state baton cannot see (a function that drops a temporary
// table internally) keeps the pin until the next such statement: pinned too long is safe, too
// short is not.

// probedPins are the pins whose state the probe can see.
const probedPins = router.PinTempTable | router.PinAdvisoryLock | router.PinHoldCursor | router.PinPrepare

// pinProbe answers one integer: a bit per kind of state the connection still holds, in the
// order of pinProbeBits.
const pinProbe = "SELECT (EXISTS (SELECT FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()))::int" +
	" | ((EXISTS (SELECT FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()))::int << 1)" +
	" | ((EXISTS (SELECT FROM pg_catalog.pg_cursors WHERE is_holdable))::int << 2)" +
	" | ((EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql))::int << 3)" // | and << bind alike, left to right

var pinProbeBits = [...]router.Pin{router.PinTempTable, router.PinAdvisoryLock, router.PinHoldCursor, router.PinPrepare}

// stateDroppers are the words of statements that can end probed state (lower case): DROP
// (tables, schemas, OWNED), the unlock functions, CLOSE, DEALLOCATE, DISCARD, and the ends of
// transactions (ON COMMIT DROP tables, a rolled-back CREATE TEMP or DECLARE; END, its synonym, is left out:
// it is in every CASE expression, and a pin kept until the next such statement is safe).
var stateDroppers = [][]byte{[]byte("drop"), []byte("unlock"), []byte("close"), []byte("dealloc"), []byte("discard"),
	[]byte("commit"), []byte("rollback"), []byte("abort")}

// mayDropState reports whether frames (a unit's client messages) may end probed state.
func mayDropState(frames []byte) bool {
	low := bytes.ToLower(frames)
	for _, w := range stateDroppers {
		if bytes.Contains(low, w) {
			return true
		}
	}
	return false
}

// recheckPins asks be, the connection that ran a unit that may have dropped some of the
// session's pinned state (mayDropState) and left it idle, which of the probed pins still hold
// state, when be is the session's primary connection (where pinned state lives). It reports
// whether a pin ended. A failed probe keeps every pin.
func (s *session) recheckPins(be *backend) bool {
	if be == nil || be.broken {
		return false
	}
	p := s.srv.live.Load().PrimaryNode()
	if p == nil || be.node.name != p.Name {
		return false
	}
	s.active.Store(nil) // the client's statement is over: cancel nothing of baton's
	v, err := be.queryInt(pinProbe)
	if err != nil {
		return false
	}
	left := router.Pin(0)
	for i, p := range pinProbeBits {
		if v&(1<<i) != 0 {
			left |= p
		}
	}
	before := s.pins
	s.pins = s.pins&^probedPins | s.pins&probedPins&left
	return s.pins != before
}

// queryInt runs q, a query of baton's own answering one integer, on b, outside a transaction.
// An I/O error closes b.
func (b *backend) queryInt(q string) (int64, error) {
	var v int64
	verr := errors.New("no row")
	_, failed, err := b.runRows(q, func(body []byte) {
		if len(body) >= 6 && binary.BigEndian.Uint16(body) == 1 {
			n := int32(binary.BigEndian.Uint32(body[2:]))
			if n >= 0 && int(n) <= len(body)-6 {
				v, verr = strconv.ParseInt(string(body[6:6+n]), 10, 64)
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case failed:
		return 0, errors.New("probe failed")
	}
	return v, verr
}
