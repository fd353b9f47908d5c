// Package pins counts the client sessions that hold session state which keeps them on one
// backend (router.Pin bits: temporary tables, LISTEN, advisory locks, …), by reason, for the
// metrics, the status table and the log. Both engines' sessions use it the same way: after each
// statement a session calls Publish with its current pins; when it ends, Publish with 0.
//
// Example: a session publishes after each statement and logs the pins it takes for the first time:
//
//	if first := counts.Publish(&sess.pinned, sess.pins); first != 0 {
//		log.Info("session pinned", "reasons", pins.Names(first))
//	}
package pins
