package myproxy

import (
	"fmt"
	"strconv"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
)

// Thread ids (issue 9, item 3). baton hands every client its own connection id in the
// greeting (session.connID); a session runs on several backend connections with ids of their
// own. So baton answers what names its ids itself:
//   - KILL [CONNECTION] id / KILL QUERY id of one of its sessions (router.MyKill): KILL QUERY
//     kills the statement the session runs on a backend now (KILL QUERY of that backend's
//     thread, sent on the killer's own connection to the node: same backend user, so the
//     server allows it); KILL ends the session — its running statement's backend thread is
//     killed and the client connection closed. Killing a session of another baton user is
//     refused (1095), as MySQL refuses it to a user without the privilege; an id that is no
//     session of this listener is "Unknown thread id" (1094), never passed on (it could name a
//     pooled backend thread of someone else).
//   - SELECT CONNECTION_ID() [[AS] alias] as the whole statement (router.MyConnectionIDQuery):
//     answered with the greeting's id. CONNECTION_ID() inside another statement still runs on
//     a backend and returns that backend's id; rewriting it inside arbitrary SQL would change
//     the result column's name. The plain query is what drivers and tools send (Connector/J,
//     ORMs, the tools that then KILL QUERY it).

// sessionByID returns the session with connection id id, or nil, and its user's name (a
// session changes its user under s.mu: COM_CHANGE_USER).
func (s *Server) sessionByID(id uint64) (*session, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		if uint64(ss.connID) == id {
			return ss, ss.user.Name
		}
	}
	return nil, ""
}

// kill handles KILL [QUERY] id of a baton thread id.
func (s *session) kill(id uint64, query bool) {
	target, owner := s.srv.sessionByID(id)
	switch {
	case target == nil:
		s.writeErr(s.rseq, 1094, "HY000", fmt.Sprintf("Unknown thread id: %d", id))
		return
	case owner != s.user.Name:
		s.writeErr(s.rseq, 1095, "HY000", fmt.Sprintf("You are not owner of thread %d", id))
		return
	case target == s && query:
		// The KILL QUERY is this session's running statement.
		s.writeErr(s.rseq, 1317, "70100", "Query execution was interrupted")
		return
	case target == s:
		s.writeErr(s.rseq, errConnectionKilled, "70100", "Connection was killed")
		s.closing.Store(true)
		return
	}
	if !query {
		target.closing.Store(true)
	}
	if be := target.active.Load(); be != nil {
		verb := "KILL QUERY "
		if !query {
			verb = "KILL "
		}
		if err := s.killBackend(be, verb+strconv.FormatUint(uint64(be.cc.ConnID), 10)); err != nil {
			s.writeErr(s.rseq, errBaton, "HY000", fmt.Sprintf("baton: could not kill the statement of thread %d on node %s: %v", id, be.node.name, err))
			return
		}
	}
	if !query {
		// Its goroutine sees the closed socket and ends the session; a parked session is woken
		// first (closing its socket would silently end the idler's watch of it) and ends on a
		// new goroutine.
		s.srv.idler.Wake(target.client)
		target.client.Close()
	}
	s.writeOK(s.rseq, 0, 0)
}

// killBackend runs a KILL statement q on this session's connection to be's node.
func (s *session) killBackend(be *backend, q string) error {
	mine, err := s.acquire(be.node)
	if err != nil {
		return err
	}
	if err := mine.roundTrip(mywire.ComQuery, []byte(q), posQueryTimeout); err != nil {
		if mine.broken {
			s.drop(mine)
		}
		// Unknown thread id: the statement ended (and its backend went back) meanwhile.
		if !mine.broken {
			return nil
		}
		return err
	}
	return nil
}

// answerConnectionID answers SELECT CONNECTION_ID() with the greeting's id: one BIGINT
// UNSIGNED NOT NULL column named col (INT UNSIGNED, as MariaDB sends it), one row.
func (s *session) answerConnectionID(col string) {
	seq := s.rseq
	var out []byte
	out, seq = mywire.AppendPacket(out, seq, []byte{1})
	out, seq = mywire.AppendPacket(out, seq, mywire.AppendColumnDef(nil, mywire.ColumnDef{
		Name: col, Charset: 63, Length: 10, Type: mywire.TypeLong,
		Flags: mywire.FlagNotNull | mywire.FlagUnsigned | mywire.FlagBinary,
	}, s.extMeta))
	deprecateEOF := s.caps&mywire.ClientDeprecateEOF != 0
	if !deprecateEOF {
		out = mywire.AppendEOF(out, seq, 0, s.statusNow())
		seq++
	}
	out, seq = mywire.AppendPacket(out, seq, mywire.AppendLenEncString(nil, strconv.FormatUint(uint64(s.connID), 10)))
	if deprecateEOF {
		out = mywire.AppendOKAsEOF(out, seq, mywire.OK{Status: s.statusNow()}, s.caps)
	} else {
		out = mywire.AppendEOF(out, seq, 0, s.statusNow())
	}
	s.w.Write(out)
	s.last = nil // the previous statement's diagnostics are gone, as after any statement
	s.rowCount, s.foundRows, s.lastRan, s.lastStale = -1, 1, nil, true
}

// maxAnsweredLen bounds the statements baton considers answering itself (KILL, SELECT
// CONNECTION_ID()): longer texts are never those, and are not lexed twice.
const maxAnsweredLen = 512

// mentions is a cheap filter before router.MyKill / MyConnectionIDQuery: a short text that
// contains word (case-insensitively).
func mentions(q, word string) bool {
	return len(q) <= maxAnsweredLen && containsFold(q, word)
}

func killOf(q string) (id uint64, query, ok bool) {
	if !mentions(q, "kill") {
		return 0, false, false
	}
	return router.MyKill(q)
}

func connectionIDQuery(q string) (col string, ok bool) {
	if !mentions(q, "connection_id") {
		return "", false
	}
	return router.MyConnectionIDQuery(q)
}
