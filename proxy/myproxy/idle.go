package myproxy

import (
	"github.com/baton-proxy/baton/proxy/pool"
)

// A session keeps its backend connections between statements. The server may close one of
// them meanwhile (wait_timeout, a restart, KILL by an operator). Before each command baton
// looks at them (pool.PeerClosed: one non-blocking peek, nothing consumed):
//   - a connection that held only state baton rebuilds (session variables are replayed,
//     prepared statements re-prepared) is dropped and replaced on demand: the client does
//     not notice;
//   - a connection that held state that cannot be rebuilt — an open transaction, the pinned
//     state on the primary (temporary tables, GET_LOCK, LOCK TABLES, user variables, SQL
//     PREPARE …), an open cursor, GET DIAGNOSTICS variables not yet copied — ends the
//     session: the client gets an error saying so, then the connection closes, as it would
//     have lost its own connection to the server.

// checkIdleConns drops the session's backend connections the server closed while the session
// was idle; false means the session lost state it cannot rebuild (the client was told).
func (s *session) checkIdleConns() bool {
	for _, be := range s.conns {
		if be.broken || !pool.PeerClosed(be.NetConn()) {
			continue
		}
		if what := s.unrebuildable(be); what != "" {
			s.writeErr(s.rseq, errConnectionKilled, "08S01", "baton: node "+be.node.name+
				" closed the idle connection holding this session's "+what+" (wait_timeout?); the session cannot go on: reconnect")
			s.closing.Store(true)
			be.close()
			return false
		}
		be.close()
		s.drop(be)
	}
	return true
}

// unrebuildable names the session state on be that baton cannot rebuild on another connection
// ("" none).
func (s *session) unrebuildable(be *backend) string {
	switch {
	case be == s.txConn || (s.inTx && s.txConn == nil):
		return "open transaction"
	case s.pins != 0 && be.node.name == s.primaryName():
		return "pinned state (temporary tables, locks, user variables or prepared SQL)"
	case s.varsFrom == be:
		return "GET DIAGNOSTICS variables"
	}
	for _, st := range s.stmts {
		if st.cursor == be {
			return "open cursor"
		}
	}
	return ""
}
