package pgproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/router"
)

// Transaction pooling: backend connections move from session to session, so what a connection
// carries is explicit data, compared with what the session needs at checkout:
//
//   - settings: the session-state history text it has applied (backend.settings; "" = as
//     dialled or reset). A connection whose settings differ gets RESET ALL and the session's
//     history in front of the unit, in the same Query.
//   - prepared statements under baton's own names, derived from the statement text and parameter
//     types (sharedName): two sessions' "S_1" never collide, and a statement prepared once on a
//     connection serves every session that prepares the same text. A client's Parse of a text
//     the connection already holds becomes a Parse of the unnamed statement (it answers
//     ParseComplete, as the client expects); Bind and Describe are renamed; the client's Close
//     drops only its own name (the server statement stays for others) and is answered by a
//     Close of a name that never exists. At most pool.max_prepared_statements per connection:
//     the least recently used are closed first.

// sharedGen marks a statement known by its shared name: its text is in the name.
const sharedGen = ^uint64(0)

// closedName is never prepared: a Close of it answers CloseComplete and changes nothing.
const closedName = "baton_closed"

// sharedName is baton's server-side name for a Parse body's statement (text + parameter types).
func sharedName(parseRest []byte) string {
	sum := sha256.Sum256(parseRest)
	return "baton_" + hex.EncodeToString(sum[:12])
}

// parseRest returns the part of a Parse body after the statement name.
func parseRest(body []byte) []byte {
	i := strings.IndexByte(string(body), 0)
	if i < 0 {
		return nil
	}
	return body[i+1:]
}

// renamedParse is a Parse frame of rest under name.
func renamedParse(name string, rest []byte) []byte {
	body := append(append([]byte(name), 0), rest...)
	return pgwire.AppendFrame(nil, 'P', body)
}

// renamedBind is a Bind frame f with its statement name replaced.
func renamedBind(f []byte, stmtName string) []byte {
	body := pgwire.Body(f)
	i := strings.IndexByte(string(body), 0) // portal
	if i < 0 {
		return f
	}
	j := strings.IndexByte(string(body[i+1:]), 0) // statement
	if j < 0 {
		return f
	}
	nb := append([]byte(nil), body[:i+1]...)
	nb = append(append(nb, stmtName...), 0)
	nb = append(nb, body[i+1+j+1:]...)
	return pgwire.AppendFrame(nil, 'B', nb)
}

// renamedTarget is a Describe or Close frame of a statement with its name replaced.
func renamedTarget(typ byte, name string) []byte {
	return pgwire.AppendFrame(nil, typ, append(append([]byte{'S'}, name...), 0))
}

// touch records a use of shared statement name on be (for the LRU bound).
func (be *backend) touch(name string) {
	be.tick++
	if be.used == nil {
		be.used = map[string]uint64{}
	}
	be.used[name] = be.tick
}

// makeRoom closes least recently used shared statements on be, in front of the unit, until one
// more fits under max; statements the unit itself uses (used at or after since) stay.
func (s *session) makeRoom(out []byte, u *unit, be *backend, since uint64) []byte {
	max := s.srv.config().Pool.MaxPreparedStatements
	for max > 0 && len(be.used) >= max {
		victim, oldest := "", ^uint64(0)
		for name, t := range be.used {
			if t < since && t < oldest {
				victim, oldest = name, t
			}
		}
		if victim == "" {
			return out
		}
		out = pgwire.AppendCloseStmt(out, victim)
		u.swallow++
		delete(be.used, victim)
		delete(be.stmts, victim)
		delete(be.shapes, victim)
	}
	return out
}

// prepareShared is prepare for transaction pooling: the client's statement names map to shared
// server names. It returns the injected prefix and the client's frames, rewritten.
func (s *session) prepareShared(out []byte, u *unit, be *backend) []byte {
	since := be.tick + 1
	var cf []byte
	frames := u.frames
	for f := range eachFrame(frames) {
		switch f[0] {
		case 'P':
			name, q, _ := pgwire.ParseMsg(pgwire.Body(f))
			if name == "" {
				s.stmtGen++
				s.stmts[""] = &stmt{gen: s.stmtGen, parse: append([]byte(nil), f...), query: q}
				be.stmts[""] = s.stmtGen
				cf = append(cf, f...)
				continue
			}
			rest := parseRest(pgwire.Body(f))
			srv := sharedName(rest)
			s.stmts[name] = &stmt{gen: sharedGen, srv: srv, parse: renamedParse(srv, rest), query: q}
			// The client's own Parse plans the statement afresh, as on a direct connection
			// (after DDL, re-preparing is how a client recovers from 0A000): close a copy the
			// connection holds first.
			if _, had := be.stmts[srv]; had {
				out = pgwire.AppendCloseStmt(out, srv)
				u.swallow++
			} else {
				out = s.makeRoom(out, u, be, since)
			}
			cf = append(cf, renamedParse(srv, rest)...)
			be.stmts[srv] = sharedGen
			delete(be.shapes, srv) // known again once described
			be.touch(srv)
		case 'B', 'D':
			name, ok := usedStatement(f)
			if !ok {
				cf = append(cf, f...)
				continue
			}
			st := s.stmts[name]
			if st == nil || st.srv == "" {
				if st != nil {
					out = s.ensurePrepared(out, u, be, name, st)
				}
				cf = append(cf, f...)
				continue
			}
			if _, had := be.stmts[st.srv]; !had {
				out = s.makeRoom(out, u, be, since)
			} else if sh, known := be.shapes[st.srv]; known && st.rows != nil && (!bytes.Equal(sh, st.rows) || !bytes.Equal(be.shapeParams[st.srv], st.params)) {
				// Another session re-prepared the shared statement with another shape.
				u.refused = errShapeChanged()
				return out
			}
			out = s.ensurePrepared(out, u, be, st.srv, st)
			be.touch(st.srv)
			if f[0] == 'B' {
				cf = append(cf, renamedBind(f, st.srv)...)
			} else {
				cf = append(cf, renamedTarget('D', st.srv)...)
			}
		case 'C':
			if kind, name, _ := pgwire.DescribeMsg('C', pgwire.Body(f)); kind == 'S' && name != "" {
				if st := s.stmts[name]; st != nil && st.srv != "" {
					delete(s.stmts, name) // the server statement stays for other sessions
					cf = append(cf, renamedTarget('C', closedName)...)
					continue
				}
				delete(s.stmts, name)
			}
			cf = append(cf, f...)
		default:
			cf = append(cf, f...)
		}
	}
	return append(out, cf...)
}

// settingsKey is the text of the session's settings history, to compare with what a connection
// has applied.
func (s *session) settingsKey() string {
	if s.keyVer != len(s.history) || s.keyCache == "" && len(s.history) > 0 {
		var b strings.Builder
		for _, h := range s.history {
			b.WriteString(h.sql)
			b.WriteByte(0)
		}
		s.keyCache, s.keyVer = b.String(), len(s.history)
	}
	return s.keyCache
}

// keepsState reports whether the unit class leaves state that a shared connection must not
// carry to another session without a reset (DISCARD ALL runs on the server: the connection's
// statements are gone).
func dropsStatements(c router.Class) bool {
	return c.ResetAll && c.Unpin != 0 || c.Unpin&router.PinPrepare != 0
}
