package pgproxy

import (
	"bytes"
	"time"

	"github.com/baton-proxy/baton/proxy/pgwire"
)

// Prepared-statement shape. PostgreSQL refuses to run a prepared statement whose result type
// changed since it was prepared (ALTER TABLE … DROP COLUMN: 0A000 "cached plan must not change
// result type"). baton prepares a session's statement lazily on each connection it uses; a
// re-parse there would silently return rows of the new shape. So the relay records the
// ParameterDescription and RowDescription the client was told (its Describe of the statement),
// and a lazy re-parse first describes the statement on the new connection and compares: when the
// shape differs the client gets the server's error, and nothing of the unit runs.

// errShapeChanged is PostgreSQL's answer to a prepared statement whose result type changed.
func errShapeChanged() []byte {
	return pgwire.AppendError(nil, pgwire.SevError, "0A000", "cached plan must not change result type")
}

// describedStatements lists, in order, the statements a unit's frames Describe.
func describedStatements(frames []byte) []string {
	var out []string
	for f := range eachFrame(frames) {
		if f[0] == 'D' {
			if kind, name, err := pgwire.DescribeMsg('D', pgwire.Body(f)); err == nil && kind == 'S' {
				out = append(out, name)
			}
		}
	}
	return out
}

// shapeRecorder follows a unit's responses and records the shape of each statement it
// describes (ParameterDescription, then RowDescription or NoData).
type shapeRecorder struct {
	names []string
	cur   *stmt
	be    *backend
}

func (r *shapeRecorder) see(s *session, f []byte) {
	switch f[0] {
	case 't':
		if len(r.names) == 0 {
			return
		}
		r.cur = s.stmts[r.names[0]]
		r.names = r.names[1:]
		if r.cur != nil {
			r.cur.params = append([]byte(nil), f...)
		}
	case 'T', 'n':
		if r.cur != nil {
			r.cur.rows = append([]byte(nil), f...)
			r.be.noteShape(r.cur)
			r.cur = nil
		}
	}
}

// noteShape records the shape of a shared statement as this connection's server holds it.
func (be *backend) noteShape(st *stmt) {
	if st.srv == "" || be == nil {
		return
	}
	if be.shapes == nil {
		be.shapes, be.shapeParams = map[string][]byte{}, map[string][]byte{}
	}
	be.shapes[st.srv], be.shapeParams[st.srv] = st.rows, st.params
}

// checkShape prepares st on be and describes it, before anything of the unit is sent. It
// returns nil when be now holds the statement with the shape the client was told; otherwise the
// error to answer the unit with (the shape changed, or the statement no longer parses here).
func (s *session) checkShape(be *backend, name string, st *stmt) []byte {
	be.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer be.conn.SetDeadline(time.Time{})
	out := append([]byte(nil), st.parse...)
	out = pgwire.AppendFrame(out, 'D', append(append([]byte{'S'}, name...), 0))
	out = pgwire.AppendFrame(out, 'H', nil) // Flush: the answers come without ending anything
	be.w.Write(out)
	if be.w.Flush() != nil {
		be.close()
		return nil
	}
	var params, rows, failure []byte
	for rows == nil && failure == nil {
		f, err := be.rd.Next()
		if err != nil {
			be.close()
			return nil
		}
		switch f[0] {
		case 't':
			params = append([]byte(nil), f...)
		case 'T', 'n':
			rows = append([]byte(nil), f...)
		case 'E':
			failure = append([]byte(nil), f...)
		}
	}
	if failure == nil && bytes.Equal(params, st.params) && bytes.Equal(rows, st.rows) {
		be.stmts[name] = st.gen
		be.noteShape(st)
		return nil
	}
	// Undo: the statement must not stay prepared here with another shape.
	var undo []byte
	if failure == nil {
		undo = pgwire.AppendCloseStmt(undo, name)
	}
	undo = append(undo, syncFrame...)
	be.conn.SetDeadline(time.Now().Add(10 * time.Second))
	be.w.Write(undo)
	if be.w.Flush() != nil {
		be.close()
	}
	for !be.broken {
		f, err := be.rd.Next()
		if err != nil {
			be.close()
			break
		}
		if f[0] == 'Z' {
			break
		}
	}
	delete(be.stmts, name)
	delete(be.shapes, name)
	if failure != nil {
		return failure
	}
	return errShapeChanged()
}

// abortBackendTx puts be's open transaction into the failed state, as the error baton answers
// in its place would have on a direct connection (later statements get 25P02 until ROLLBACK).
func (s *session) abortBackendTx(be *backend) {
	be.run("SELECT 1/0 /* baton: abort the transaction after a refused prepared statement */")
}
