package pgproxy

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Process identity. A baton session has no single backend process: its statements run on the
// primary and the replicas, on whichever pooled connection serves them. So:
//   - BackendKeyData carries baton's own process id and secret for the session; a CancelRequest
//     with them reaches the backend running the session's statement (server.go handleCancel).
//   - pg_backend_pid() is the real process id of the backend that runs the statement, as
//     pg_stat_activity and the server log show it; baton does not rewrite it (a join of
//     pg_stat_activity on pg_backend_pid() must keep working).
//   - SELECT pg_cancel_backend(N) / pg_terminate_backend(N) as a whole statement, with N a
//     baton process id, acts on that baton session (terminate: it ends with FATAL 57P01); with N
//     the process id of a backend connection baton holds, it runs on that backend's node, so a
//     pid read from one replica's pg_stat_activity can be cancelled although the statement would
//     otherwise run on the primary.

var signalRe = regexp.MustCompile(`(?is)^\s*select\s+(?:pg_catalog\s*\.\s*)?pg_(cancel|terminate)_backend\s*\(\s*(\d{1,10})\s*(?:,\s*\d+\s*)?\)\s*;?\s*$`)

// signalTarget parses a whole-statement pg_cancel_backend / pg_terminate_backend call.
func signalTarget(q string) (terminate bool, pid uint32, ok bool) {
	if !strings.Contains(q, "_backend") && !strings.Contains(q, "_BACKEND") {
		return false, 0, false // (every simple Query passes here: no regexp for the others)
	}
	m := signalRe.FindStringSubmatch(q)
	if m == nil {
		return false, 0, false
	}
	n, err := strconv.ParseUint(m[2], 10, 32)
	if err != nil {
		return false, 0, false
	}
	return len(m[1]) == len("terminate"), uint32(n), true
}

// backendPIDs maps the process ids of the backend connections baton holds to their nodes.
type backendPIDs struct {
	mu sync.Mutex
	m  map[uint32]*nodePool
}

func (r *backendPIDs) add(pid uint32, np *nodePool) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[uint32]*nodePool{}
	}
	r.m[pid] = np
	r.mu.Unlock()
}

func (r *backendPIDs) remove(pid uint32, np *nodePool) {
	r.mu.Lock()
	if r.m[pid] == np {
		delete(r.m, pid)
	}
	r.mu.Unlock()
}

func (r *backendPIDs) node(pid uint32) *nodePool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[pid]
}

// sessionByPID returns the session that baton gave process id pid, or nil.
func (s *Server) sessionByPID(pid uint32) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.sessions {
		if uint32(id>>32) == pid {
			return ss
		}
	}
	return nil
}

// signal handles a whole-statement pg_cancel_backend / pg_terminate_backend of a baton process
// id. It returns false when pid is not one (the statement then runs on a server).
func (s *session) signal(terminate bool, pid uint32) bool {
	target := s.srv.sessionByPID(pid)
	if target == nil {
		return false
	}
	if target.user.BackendUser != s.user.BackendUser {
		return false // the server decides (and refuses) as for any other role's process
	}
	if target == s {
		if terminate {
			s.fatal("57P01", "terminating connection due to administrator command")
			return true
		}
		s.push(&unit{synthetic: pgwire.AppendReady(pgwire.AppendError(nil, pgwire.SevError, "57014", "canceling statement due to user request"), s.txStatusNow())})
		return true
	}
	if terminate {
		target.terminate()
	} else {
		target.cancelRunning()
	}
	name := "pg_cancel_backend"
	if terminate {
		name = "pg_terminate_backend"
	}
	var b []byte
	b, _ = (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte(name), DataTypeOID: 16, DataTypeSize: 1, TypeModifier: -1}}}).Encode(b)
	b, _ = (&pgproto3.DataRow{Values: [][]byte{[]byte("t")}}).Encode(b)
	b, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}).Encode(b)
	s.push(&unit{synthetic: pgwire.AppendReady(b, s.txStatusNow())})
	return true
}

// cancelRunning cancels the statement the session runs now, if any.
func (s *session) cancelRunning() {
	s.cancelMu.Lock()
	defer s.cancelMu.Unlock()
	if be := s.active.Load(); be != nil {
		s.srv.sendCancel(be)
	}
}

// terminate ends the session as pg_terminate_backend ends a server process: what it runs is
// cancelled, and the client gets FATAL 57P01 and a closed connection.
func (s *session) terminate() {
	s.terminated.Store(true)
	s.cancelMu.Lock()
	be := s.active.Load()
	s.cancelMu.Unlock()
	if be != nil {
		// A statement runs: its server process is terminated, and the relay hands the
		// server's FATAL to the client as on a direct connection.
		s.srv.terminateBackend(be, s.key)
	}
	s.interrupt() // wake the client loop (run) to end the session
}

// terminateBackend runs pg_terminate_backend for be's server process on its node.
func (s *Server) terminateBackend(be *backend, key poolKey) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := be.node.acquire(ctx, key)
	if err != nil {
		return
	}
	_, _, err = c.run("SELECT pg_catalog.pg_terminate_backend(" + strconv.FormatUint(uint64(be.pid), 10) + ")")
	be.node.release(c, err == nil)
}

// signalCall is a prepared pg_cancel_backend / pg_terminate_backend of a baton process id.
type signalCall struct {
	terminate bool
	pid       uint32
}

// signalGroup handles pg_cancel_backend / pg_terminate_backend of baton process ids in an
// extended-protocol group: a Parse of such a call is rewritten to a statement that answers
// true with the same column, and every Bind of it signals the baton session (the server could
// not: the process id is baton's). It returns the group to send.
func (s *session) signalGroup(frames []byte) []byte {
	var out []byte
	changed := false
	for f := range eachFrame(frames) {
		switch f[0] {
		case 'P':
			name, q, err := pgwire.ParseMsg(pgwire.Body(f))
			if err != nil {
				break
			}
			if terminate, pid, ok := signalTarget(q); ok {
				if t := s.srv.sessionByPID(pid); t != nil && t != s && t.user.BackendUser == s.user.BackendUser {
					if s.signals == nil {
						s.signals = map[string]signalCall{}
					}
					s.signals[name] = signalCall{terminate, pid}
					col := "pg_cancel_backend"
					if terminate {
						col = "pg_terminate_backend"
					}
					body := append([]byte(name), 0)
					body = append(body, "SELECT true AS "+col...)
					body = append(body, 0, 0, 0) // no parameter types
					out = pgwire.AppendFrame(out, 'P', body)
					changed = true
					continue
				}
			}
			delete(s.signals, name)
		case 'B':
			if _, name, err := pgwire.BindMsg(pgwire.Body(f)); err == nil {
				if c, ok := s.signals[name]; ok {
					if t := s.srv.sessionByPID(c.pid); t != nil {
						if c.terminate {
							t.terminate()
						} else {
							t.cancelRunning()
						}
					}
				}
			}
		}
		out = append(out, f...)
	}
	if !changed {
		return frames
	}
	return out
}
