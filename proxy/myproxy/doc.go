// Package myproxy is baton's MySQL/MariaDB data path: the listener, client sessions, and
// per-node backend pools (the generic proxy/pool).
//
// A Server speaks the server side of the connection phase itself (protocol 10, TLS, and
// mysql_native_password / caching_sha2_password authentication against the configured users),
// then runs one goroutine per session that reads a command, routes it, sends it to the chosen
// backend and relays the response packets while a mywire.Tracker finds where the response ends.
// The negotiated capability flags of a session are part of its pool key, so every backend
// connection it uses answers in the format the client asked for.
//
// Routing follows the same rules as PostgreSQL (router.Place): inside a transaction (the
// server's IN_TRANS status flag) everything goes to the transaction's node; START TRANSACTION
// READ ONLY may run on a replica; pinned sessions (temporary tables, user variables, GET_LOCK,
// LOCK TABLES, SQL PREPARE, autocommit off) use the primary. Session state (SET, SET NAMES, USE,
// COM_INIT_DB, the handshake's character set and schema, SET @v = literal) is replayed on every
// backend the session uses, pipelined in front of the session's command. Prepared statements
// get baton's own statement ids; each backend connection keeps its server statements by text
// (bounded by pool.max_prepared_statements, least recently used closed first); a statement is
// prepared lazily on a connection that lacks it, with the parameter types of its last
// execution added so an execution that does not resend them still works there.
//
// pool_mode transaction (txpool.go, the default): a session holds a backend connection for one
// command outside a transaction, or one transaction, and gives it back unless something lives
// on it — a pin (pinstate.go follows the named state behind each pin and ends it when the state
// is gone), long data or a cursor of a prepared statement, a pending SET TRANSACTION, or the
// warnings of its previous statement. The next session that takes the connection compares its
// history with what the connection carries and replays the difference (or resets the
// connection first). Session mode runs the same code with the connections kept.
//
// Consistency read_your_writes follows each session's writes by GTID (ryw.go): after a write
// commits on the primary baton learns its GTID (the OK packets' last_gtid, which every backend
// connection tracks — track.go — so nothing is injected after the client's statement; else
// SELECT @@last_gtid; MySQL: @@global.gtid_executed), and a later read goes to a replica whose
// probed position covers it, else to a replica after MASTER_GTID_WAIT (MySQL:
// WAIT_FOR_EXECUTED_GTID_SET) succeeded within a second, else to the primary.
//
// Session fidelity: statements that read the previous statement's outcome (SHOW WARNINGS,
// ROW_COUNT(), GET DIAGNOSTICS …) run where it ran (diag.go); baton's thread ids are its own, and
// KILL [QUERY] of them and SELECT CONNECTION_ID() are answered by baton (kill.go); a backend
// connection the server closed while the session was idle is replaced, or ends the session when
// it held state baton cannot rebuild (idle.go); MariaDB's extended metadata is offered when the
// servers offer it, and relayed.
//
// Safety nets: a replica's read-only refusal (1290, 1836) or a catalog-lag error (1146, 1049,
// 1305) on a held-back read outside a transaction is resent to the primary, invisibly.
package myproxy
