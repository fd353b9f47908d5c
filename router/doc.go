// Package router decides where a statement may run: on the primary, or on any caught-up
// replica. It is pure logic: no I/O, no logging, no metrics. The proxy calls it once per
// routing unit (a simple-protocol query string, or the statements of an extended-protocol group)
// and gets a Class back.
//
// # What the router decides
//
// A Class carries:
//   - Route: Replica only for statements proven read-only; Primary otherwise.
//   - Tx: whether the text begins (read-write or READ ONLY) or ends a transaction. The
//     backend's ReadyForQuery status stays the truth; Tx only says where a BEGIN goes.
//   - SessionState / ResetAll: SET, RESET, SET ROLE, LOAD ... change session state that the
//     proxy must replay, in order, on every backend connection of the session. SET LOCAL and SET
//     TRANSACTION do not. RESET ALL and DISCARD ALL clear the history (ResetAll) and are
//     themselves session state, so that connections that already replayed SETs are reset too.
//   - Pin / Unpin: state that lives on one node (temp tables, LISTEN, session advisory locks,
//     SQL-level PREPARE, WITH HOLD cursors). After a pin the session reads from the primary
//     until the matching Unpin (DISCARD TEMP, UNLISTEN *, pg_advisory_unlock_all(),
//     DEALLOCATE ALL, CLOSE ALL; DISCARD ALL drops them all).
//   - Reason: a short, stable string for metrics and logs ("select", "write",
//     "locking-clause", "unknown-function:f", "parse-error", ...).
//
// # Fail closed
//
// Anything not provably read-only goes to the primary: a plain SELECT / WITH ... SELECT /
// VALUES / TABLE / SHOW / EXPLAIN (without ANALYZE, or ANALYZE of a read) / COPY ... TO
// STDOUT of a read, with no locking clause, no SELECT INTO, no data-modifying CTE, and only
// calls of functions that are immutable or stable (per the Catalog) or on a short builtin
// list of volatile but replica-safe functions (random, clock_timestamp, pg_sleep,
// pg_is_in_recovery ...). nextval, setval, advisory locks, set_config, pg_notify, dblink, lo_*
// and the like never go to a replica. A function the router does not know routes to the
// primary with reason "unknown-function:name". A text PostgreSQL would reject routes to the
// primary ("parse-error"), and so does a text whose statements split differently when
// standard_conforming_strings is off ("string-escape").
//
// Known limits, all covered by the proxy's safety net (a replica's 25006 "read-only
// transaction" error makes the proxy resend to the primary): a view, an operator or a cast may call a
// volatile function; a user function may shadow a builtin name on the search_path; DO, CALL
// and volatile functions may create session state (temp tables, LISTEN ...) that no pin
// records.
//
// A leading comment /* baton:primary */ forces the primary; /* baton:replica */ sends a
// statement the router only suspects (unknown or volatile functions) to a replica, but never a
// write, a lock, transaction control or session state.
//
// # Layers: fast path, parser, cache
//
// 1. A lexer (pglex.go) that knows PostgreSQL's comments (nested), strings (standard, E'..',
// U&'..', dollar-quoted), quoted identifiers and operators splits the text into statements at
// top-level semicolons, as psql does (also inside BEGIN ATOMIC bodies).
//
// 2. The fast path (pgfast.go) decides the common shapes from tokens alone: SELECTs whose
// words cannot lock or write and whose calls are all known safe, SHOW, BEGIN / COMMIT, SET,
// DISCARD, INSERT / UPDATE / DELETE / DDL by their first word. It does no allocation beyond
// the pooled token buffer and takes no lock.
//
// 3. What it cannot decide goes to PostgreSQL's own grammar (pg_query_go, cgo): the parse tree
// tells FOR UPDATE from SUBSTRING(x FOR 2), a column named "update" from an UPDATE, and which
// names are really function calls. Parser verdicts are cached by statement text (bounded,
// sharded CLOCK cache; texts over 8 KiB are not cached). Parsing costs tens of microseconds,
// the fast path about one.
//
// # Usage
//
//	cat := router.NewPGCatalog()
//	for rows.Next() { // rows of router.PGCatalogQuery, run on the primary
//		cat.Add(nspname, proname, provolatile[0])
//	}
//	cl := router.NewPGClassifier(cat, 10000)
//	c := cl.Classify("SELECT * FROM t WHERE id = $1")
//	// c.Route == router.Replica, c.Reason == "select"
//
// Refresh the catalog from time to time (and after the session ran DDL) and install it with
// SetCatalog, which also empties the cache.
package router
