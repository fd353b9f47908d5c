package myproxy

import (
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
			bid, cols, params, ok := t.Prepared()
			if !ok || id == 0 {
				return
			}
			s.stmts[id] = &stmt{id: id, query: q, class: cls, params: params}
			_ = cols
			be.stmts[id] = bid
			be.typed[id] = false
		},
	})
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

// ensurePrepared prepares st on be if be does not have it yet (a round trip; its answer is
// consumed here). A refusal by the server is returned as an ERR for the client.
func (s *session) ensurePrepared(be *backend, st *stmt) (*mywire.ERR, error) {
	if _, ok := be.stmts[st.id]; ok {
		return nil, nil
	}
	out, _ := mywire.AppendPacket(nil, 0, append([]byte{mywire.ComStmtPrepare}, st.query...))
	if _, err := be.w.Write(out); err != nil {
		return nil, err
	}
	if err := be.w.Flush(); err != nil {
		return nil, err
	}
	t := mywire.NewTracker(mywire.ComStmtPrepare, be.cc.Caps)
	for {
		p, _, err := be.cc.R.Next()
		if err != nil {
			return nil, err
		}
		done, err := t.Feed(p)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	if e := t.Err(); e != nil {
		return e, nil
	}
	bid, _, _, ok := t.Prepared()
	if !ok {
		return nil, fmt.Errorf("node %s: no statement id in PREPARE_OK", be.node.name)
	}
	be.stmts[st.id] = bid
	be.typed[st.id] = false
	return nil, nil
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
	u := &unit{cmd: p, class: st.class, force: st.longData, retrack: setsTracking(st.query, st.class)}
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
		e, err := s.ensurePrepared(be, st)
		if e != nil || err != nil {
			return nil, e, err
		}
		out := p // rewritten in place: the client's payload is not needed afterwards
		mywire.SetStmtID(out, be.stmts[st.id])
		if bound >= 0 {
			if out[bound] == 1 {
				be.typed[st.id] = true
			} else if !be.typed[st.id] && st.types != nil {
				// This server never saw the parameter types (the client sent them to another
				// node earlier): add them.
				with := make([]byte, 0, len(out)+len(st.types))
				with = append(with, out[:bound]...)
				with = append(with, 1)
				with = append(with, st.types...)
				with = append(with, out[bound+1:]...)
				out = with
				be.typed[st.id] = true
			}
		}
		return out, nil, nil
	}
	u.onDone = func(be *backend, t *mywire.Tracker) {
		st.longData = nil
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
	u := &unit{cmd: p, class: st.class, force: st.longData}
	u.build = func(be *backend) ([]byte, *mywire.ERR, error) {
		if _, err := s.ensurePrepared(be, st); err != nil {
			return nil, nil, err
		}
		out := append([]byte(nil), p...)
		if bid, ok := be.stmts[st.id]; ok {
			mywire.SetStmtID(out, bid)
		}
		st.longData = be
		return out, nil, nil
	}
	s.exec(u)
}

// closeStmt handles COM_STMT_CLOSE (no response): closed on every node that has it.
func (s *session) closeStmt(p []byte) {
	st := s.lookup(p, "")
	if st == nil {
		return
	}
	delete(s.stmts, st.id)
	for _, be := range s.conns {
		bid, ok := be.stmts[st.id]
		if !ok || be.broken {
			continue
		}
		delete(be.stmts, st.id)
		delete(be.typed, st.id)
		var arg [4]byte
		binary.LittleEndian.PutUint32(arg[:], bid)
		out, _ := mywire.AppendPacket(nil, 0, append([]byte{mywire.ComStmtClose}, arg[:]...))
		if _, err := be.w.Write(out); err != nil || be.w.Flush() != nil {
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
	s.exec(&unit{cmd: p, class: st.class, force: target, build: func(be *backend) ([]byte, *mywire.ERR, error) {
		out := append([]byte(nil), p...)
		mywire.SetStmtID(out, be.stmts[st.id])
		return out, nil, nil
	}})
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
	s.exec(&unit{cmd: p, class: st.class, force: st.cursor, build: func(be *backend) ([]byte, *mywire.ERR, error) {
		out := append([]byte(nil), p...)
		mywire.SetStmtID(out, be.stmts[st.id])
		return out, nil, nil
	}})
}
