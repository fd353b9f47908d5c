package router

// Route is where a routing unit (one simple-protocol query, or one extended-protocol group up to
// Sync) may run.
type Route uint8

const (
	// Primary: the statement may write, lock, or depend on primary-only state. The default.
	Primary Route = iota
	// Replica: the statement is provably read-only and may run on any caught-up replica.
	Replica
)

// String returns "primary" or "replica".
func (r Route) String() string {
	if r == Replica {
		return "replica"
	}
	return "primary"
}

// TxEffect is what a statement does to the transaction state. The proxy still takes the
// backend's ReadyForQuery status as the truth; TxEffect only decides where a BEGIN goes.
type TxEffect uint8

const (
	TxNone          TxEffect = iota // no transaction control (also SAVEPOINT / RELEASE / ROLLBACK TO)
	TxBegin                         // BEGIN / START TRANSACTION (read-write or unspecified)
	TxBeginReadOnly                 // BEGIN READ ONLY / START TRANSACTION READ ONLY (no READ WRITE later in the list)
	TxEnd                           // COMMIT / ROLLBACK / END / ABORT / PREPARE TRANSACTION ...
)

// Pin bits: session state that lives only on the node where it was created. After a statement
// with one of these bits, the session reads from the primary until the state is gone.
type Pin uint16

const (
	PinTempTable    Pin = 1 << iota // CREATE TEMP/TEMPORARY TABLE / SEQUENCE / VIEW, CREATE ... pg_temp.
	PinListen                       // LISTEN
	PinAdvisoryLock                 // pg_advisory_lock / pg_try_advisory_lock (session level, not _xact_)
	PinPrepare                      // SQL-level PREPARE name AS ...
	PinHoldCursor                   // DECLARE ... WITH HOLD
	PinLockTables                   // MySQL LOCK TABLES
	PinUserVar                      // MySQL user variable assignment
	PinOther                        // anything else that creates session state on the node
)

// Unpin bits: statements that drop session state. DISCARD ALL drops everything.
// UNLISTEN * drops PinListen; pg_advisory_unlock_all() drops PinAdvisoryLock;
// DEALLOCATE ALL drops PinPrepare; DISCARD TEMP drops PinTempTable; CLOSE ALL drops PinHoldCursor.

// Class is the classifier's verdict on one statement text (which may hold several statements).
type Class struct {
	Route  Route
	Reason string // short, stable, metric-friendly: "select", "write", "locking-clause", "volatile-function:nextval", "hint", "parse-error", ...

	Tx TxEffect
	// SessionState: the text changes session state that must be replayed, in order, on every
	// backend connection the session uses (SET / RESET / SET SESSION ... / SET NAMES / USE db ...).
	// SET LOCAL and SET inside a function are NOT session state. Replayed statements are the
	// client's own text.
	SessionState bool
	// DiscardAll: DISCARD ALL / RESET ALL style: clears the replay history (RESET ALL clears only
	// SETs; DISCARD ALL clears pins too).
	ResetAll bool
	Pin      Pin // pins set by this text
	Unpin    Pin // pins cleared by this text
	// Multi: the text holds more than one statement.
	Multi bool
	// Hint: a leading /* baton:primary */ or /* baton:replica */ comment decided the route.
	Hint bool
	// CopyIn: COPY ... FROM STDIN (primary only); CopyOut: COPY ... TO STDOUT.
	CopyIn, CopyOut bool
}
