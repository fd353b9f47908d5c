package myproxy

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
)

// prepareStmt handles COM_STMT_PREPARE: routed like the statement itself; the PREPARE_OK is
// rewritten to carry baton's statement id.
func (s *session) prepareStmt(p []byte) {
	q := string(p[1:])
	cls := s.srv.classer.Classify(q)
	var id uint32
	s.exec(&unit{
		cmd: p,
		// Preparing runs nothing: only where it may run counts.
		class: router.Class{Route: cls.Route, Reason: cls.Reason, Hint: cls.Hint},
		onFirst: func(be *backend, r []byte) []byte {
			if len(r) >= 5 && r[0] == 0x00 {
				r = append([]byte(nil), r...)
				s.nextStmt++
				id = s.nextStmt
				binary.LittleEndian.PutUint32(r[1:5], id) // PREPARE_OK: 0x00, statement id, …
			}
			return r
		},
		onDone: func(be *backend, t *mywire.Tracker) {
			bid, _, params, ok := t.Prepared()
			if !ok || id == 0 {
				return
			}
			s.stmts[id] = &stmt{id: id, query: q, class: cls, params: params}
			s.cacheStmt(be, q, bid)
		},
	})
}

// cacheStmt records server statement bid, just prepared on be, as be's statement for text q;
// a copy be had of the text is closed (the client's own prepare plans it afresh, as on a
// direct connection).
func (s *session) cacheStmt(be *backend, q string, bid uint32) {
	if old := be.prep[q]; old != nil {
		if old.id != bid && be.closeServerStmt(old.id) != nil {
			be.close()
		}
		delete(be.prep, q)
	} else if s.makeRoom(be, q) != nil {
		be.close()
	}
	be.prep[q] = &srvStmt{id: bid}
	be.touch(q)
}

// lookup finds the statement a COM_STMT_* command names, answering ERR when it is unknown.
func (s *session) lookup(p []byte, what string) *stmt {
	id, ok := mywire.StmtID(p)
	if !ok {
		s.writeErr(s.rseq, 1835, "HY000", "Malformed communication packet")
		return nil
	}
	st := s.stmts[id]
	if st == nil && what != "" {
		s.writeErr(s.rseq, 1243, "HY000", fmt.Sprintf("Unknown prepared statement handler (%d) given to %s", id, what))
	}
	return st
}

// ensurePrepared prepares st's text on be if be does not have it yet (a round trip, behind
// whatever baton pipelined in front of it; its answer is consumed here). A refusal by the
// server is returned as an ERR for the client.
func (s *session) ensurePrepared(be *backend, st *stmt) (*srvStmt, *mywire.ERR, error) {
	if ss := be.touch(st.query); ss != nil {
		return ss, nil, nil
	}
	if err := s.makeRoom(be, st.query); err != nil {
		return nil, nil, err
	}
	if err := be.inject(mywire.ComStmtPrepare, st.query, injQuiet); err != nil {
		return nil, nil, err
	}
	be.pending = be.pending[:len(be.pending)-1] // its answer is read here, not dropped
	if err := be.drain(s.warnReplay(be)); err != nil {
		return nil, nil, err
	}
	if err := be.w.Flush(); err != nil {
		return nil, nil, err
	}
	t := mywire.NewTracker(mywire.ComStmtPrepare, be.cc.Caps)
	for {
		p, _, err := be.cc.R.Next()
		if err != nil {
			return nil, nil, err
		}
		done, err := t.Feed(p)
		if err != nil {
			return nil, nil, err
		}
		if done {
			break
		}
	}
	if e := t.Err(); e != nil {
		return nil, e, nil
	}
	bid, _, _, ok := t.Prepared()
	if !ok {
		return nil, nil, fmt.Errorf("node %s: no statement id in PREPARE_OK", be.node.name)
	}
	be.prep[st.query] = &srvStmt{id: bid}
	return be.touch(st.query), nil, nil
}

// executeLayout returns the offsets of the new-params-bound flag in a COM_STMT_EXECUTE payload
// for a statement with n parameters (-1 when there are none or the payload is too short).
func executeLayout(p []byte, n uint16) int {
	if n == 0 {
		return -1
	}
	off := 10 + int(n+7)/8 // cmd, id(4), flags, iteration count(4), NULL bitmap
	if off >= len(p) {
		return -1
	}
	return off
}

// executeStmt handles COM_STMT_EXECUTE: routed by the statement's class (or to where its long
// data went), re-prepared where missing, with baton's id mapped to the backend's.
func (s *session) executeStmt(p []byte) {
	st := s.lookup(p, "mysqld_stmt_execute")
	if st == nil {
		return
	}
	bound := executeLayout(p, st.params)
	if bound >= 0 && p[bound] == 1 && len(p) >= bound+1+2*int(st.params) {
		st.types = append(st.types[:0], p[bound+1:bound+1+2*int(st.params)]...)
	}
	cursor := len(p) > 5 && p[5] != 0
	u := &unit{cmd: p, class: st.class, force: st.longData, retrack: setsTracking(st.query, st.class), stmt: st}
	if st.class.SessionState {
		// A prepared SET is session state like a COM_QUERY one: replayed as text on the other
		// backends. With parameters (or several statements) the text alone cannot replay it:
		// the session stays on the primary.
		if st.params == 0 && !st.class.Multi {
			u.state = st.query
		} else {
			u.class.Pin |= router.PinOther
		}
	}
	u.build = func(be *backend) ([]byte, *mywire.ERR, error) {
		ss, e, err := s.ensurePrepared(be, st)
		if e != nil || err != nil {
			return nil, e, err
		}
		out := p // rewritten in place: the client's payload is not needed afterwards
		mywire.SetStmtID(out, ss.id)
		if bound >= 0 {
			if out[bound] == 1 {
				if end := bound + 1 + 2*int(st.params); end <= len(out) {
					ss.types = append(ss.types[:0], out[bound+1:end]...)
				} else {
					ss.types = nil // a malformed execution: the server answers it; types unknown
				}
			} else if st.types != nil && !bytes.Equal(ss.types, st.types) {
				// This server statement last saw other parameter types, or none (the client
				// sent its types to another connection, or another session used the text
				// with its own): add the session's.
				with := make([]byte, 0, len(out)+len(st.types))
				with = append(with, out[:bound]...)
				with = append(with, 1)
				with = append(with, st.types...)
				with = append(with, out[bound+1:]...)
				out = with
				ss.types = append(ss.types[:0], st.types...)
			}
		}
		return out, nil, nil
	}
	s.unpinCalcFound(u)
	u.onDone = func(be *backend, t *mywire.Tracker) {
		st.longData = nil
		st.cursor = nil // a new execution closes the statement's earlier cursor
		if cursor && t.Status()&mywire.StatusCursorExists != 0 {
			st.cursor = be
		}
	}
	s.exec(u)
	st.longData = nil
}

// sendLongData forwards COM_STMT_SEND_LONG_DATA (no response) to the node the next execution
// will use, and ties the execution to it.
func (s *session) sendLongData(p []byte) {
	st := s.lookup(p, "")
	if st == nil {
		return // the server sends no answer to this command, even for an unknown statement
	}
	u := &unit{cmd: p, class: st.class, force: st.longData, stmt: st}
	u.build = func(be *backend) ([]byte, *mywire.ERR, error) {
		ss, _, err := s.ensurePrepared(be, st)
		if err != nil {
			return nil, nil, err
		}
		out := append([]byte(nil), p...)
		if ss != nil {
			mywire.SetStmtID(out, ss.id)
		}
		st.longData = be // the connection stays with the session until the execution
		return out, nil, nil
	}
	s.exec(u)
}

// closeStmt handles COM_STMT_CLOSE (no response). In session mode the server statement is
// closed on every connection the session holds, unless another statement of the session has
// the same text there; in transaction mode it stays for other sessions (bounded by
// pool.max_prepared_statements, txpool.go).
func (s *session) closeStmt(p []byte) {
	st := s.lookup(p, "")
	if st == nil {
		return
	}
	delete(s.stmts, st.id)
	if s.txPooling {
		// The server statement stays for other sessions, without this session's long data
		// or cursor: those close with it.
		for _, be := range []*backend{st.longData, st.cursor} {
			if ss := be.prepOf(st.query); ss != nil && !be.broken {
				delete(be.prep, st.query)
				if be.closeServerStmt(ss.id) != nil || be.w.Flush() != nil {
					s.drop(be)
				}
			}
		}
		return
	}
	for _, other := range s.stmts {
		if other.query == st.query {
			return
		}
	}
	for _, be := range s.conns {
		ss := be.prep[st.query]
		if ss == nil || be.broken {
			continue
		}
		delete(be.prep, st.query)
		if be.closeServerStmt(ss.id) != nil || be.drain(nil) != nil || be.w.Flush() != nil {
			s.drop(be)
		}
	}
}

// resetStmt handles COM_STMT_RESET: forwarded to the node holding the statement's long data or
// cursor; with neither there is nothing to reset and baton answers OK itself.
func (s *session) resetStmt(p []byte) {
	st := s.lookup(p, "mysqld_stmt_reset")
	if st == nil {
		return
	}
	target := st.longData
	if target == nil {
		target = st.cursor
	}
	st.longData, st.cursor = nil, nil
	if target == nil || target.broken {
		s.writeOK(s.rseq, 0, 0)
		return
	}
	s.exec(&unit{cmd: p, class: st.class, force: target, stmt: st, build: s.mapped(p, st)})
}

// prepOf returns be's statement of text q (nil when be is nil or lacks it).
func (be *backend) prepOf(q string) *srvStmt {
	if be == nil {
		return nil
	}
	return be.prep[q]
}

// mapped builds a COM_STMT_* command of st for the connection that holds its cursor or long
// data (the statement is there: it stays while they do).
func (s *session) mapped(p []byte, st *stmt) func(be *backend) ([]byte, *mywire.ERR, error) {
	return func(be *backend) ([]byte, *mywire.ERR, error) {
		ss := be.touch(st.query)
		if ss == nil {
			return nil, &mywire.ERR{Code: 1243, State: "HY000", Message: fmt.Sprintf("Unknown prepared statement handler (%d)", st.id)}, nil
		}
		out := append([]byte(nil), p...)
		mywire.SetStmtID(out, ss.id)
		return out, nil, nil
	}
}

// fetchStmt handles COM_STMT_FETCH: it follows the cursor to the node that opened it.
func (s *session) fetchStmt(p []byte) {
	st := s.lookup(p, "mysqld_stmt_fetch")
	if st == nil {
		return
	}
	if st.cursor == nil || st.cursor.broken {
		s.writeErr(s.rseq, 1421, "HY000", fmt.Sprintf("The statement (%d) has no open cursor.", st.id))
		return
	}
	s.exec(&unit{cmd: p, class: st.class, force: st.cursor, stmt: st, build: s.mapped(p, st),
		onDone: func(be *backend, t *mywire.Tracker) {
			if t.Status()&mywire.StatusLastRowSent != 0 {
				st.cursor = nil // exhausted: the server closed it
			}
		}})
	if u := st.cursor; u != nil && u.broken {
		st.cursor = nil
	}
}
