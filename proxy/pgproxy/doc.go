// Package pgproxy is baton's PostgreSQL data path: the listener, client sessions and per-node
// backend pools.
//
// A Server accepts clients for one cluster, terminates TLS, authenticates them itself
// (SCRAM-SHA-256, md5 or trust, per configured user) and greets them with the primary's
// ParameterStatus values and a BackendKeyData of baton's own. Each session then runs two
// goroutines: the client loop reads frames, groups them into routing units (one simple Query, or
// extended-protocol messages up to Sync), classifies and routes each unit and writes it to the
// chosen backend; the relay forwards the backend's responses to the client as raw frames, in order,
// decoding only ReadyForQuery, ErrorResponse, CommandComplete and the injected responses it must
// swallow.
//
// Routing: inside a transaction everything goes to the node that holds it (ReadyForQuery status
// is the truth). Outside one, provably read-only statements go to a readable replica (the session
// keeps using the same replica while it stays readable) unless the session is pinned (temp
// tables, LISTEN in session mode, session advisory locks, SQL PREPARE, WITH HOLD cursors; in
// transaction pooling a LISTEN goes through a shared listening connection instead: notify.go).
// Session state (startup
// parameters, SET/RESET/DISCARD) is a history replayed, pipelined in front of the next unit, on
// every backend the session uses. Named prepared statements are re-prepared lazily on the node a
// later Bind/Describe goes to; the injected ParseComplete is swallowed.
//
// Safety nets: a replica read whose reply is still held back (nothing reached the client) is
// resent to the primary when the replica answers 25006 (read-only transaction) or dies.
package pgproxy
