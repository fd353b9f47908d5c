package myproxy

import (
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
)

// Statements that read the outcome of the previous statement (router.ReadsLastStatement: SHOW
// WARNINGS, @@warning_count, ROW_COUNT(), GET DIAGNOSTICS …) run on the connection that ran the
// previous statement (session.last; exec forces it).
//
// GET DIAGNOSTICS assigns user variables, which pin the session to the primary: later reads of
// them go there. When it ran on a replica, the variables it set are copied to the session's
// primary connection before the next statement runs anywhere else (not at once: reading them
// on the replica would replace the diagnostics a second GET DIAGNOSTICS may still read).

// noteDiagnosticVars records, after unit u ran on the replica connection be, the user
// variables a GET DIAGNOSTICS assigned there.
func (s *session) noteDiagnosticVars(u *unit, be *backend) {
	if !strings.HasSuffix(u.class.Reason, "get-diagnostics") || u.cmd[0] != mywire.ComQuery ||
		u.t == nil || u.t.Err() != nil || be.node.name == s.primaryName() {
		return
	}
	if s.varsFrom != be {
		s.vars = nil
	}
	s.varsFrom = be
	for _, v := range router.MyUserVars(string(u.cmd[1:])) {
		if !slices.Contains(s.vars, v) {
			s.vars = append(s.vars, v)
		}
	}
}

// copyDiagnosticVars copies the variables noteDiagnosticVars recorded to the primary, unless
// the next statement runs on the connection that holds them (next).
func (s *session) copyDiagnosticVars(next *backend) {
	from, vars := s.varsFrom, s.vars
	if from == nil || from == next {
		return
	}
	s.varsFrom, s.vars = nil, nil
	fail := func(what string, err error) {
		s.srv.log.Warn("GET DIAGNOSTICS on a replica: its variables could not be copied to the primary",
			"cluster", s.srv.config().Name, "step", what, "error", err)
	}
	if from.broken {
		return
	}
	row, types, err := from.queryRow("SELECT "+strings.Join(vars, ", "), posQueryTimeout)
	if err != nil {
		fail("read", err)
		return
	}
	p, err := s.acquire(s.srv.node(s.primaryName()))
	if err != nil {
		fail("connect", err)
		return
	}
	if err := s.replay(p); err != nil {
		s.drop(p)
		fail("replay", err)
		return
	}
	var b strings.Builder
	b.WriteString("SET ")
	for i, v := range vars {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v + " = " + sqlLiteral(row[i], types[i]))
	}
	if err := p.roundTrip(mywire.ComQuery, []byte(b.String()), posQueryTimeout); err != nil {
		if p.broken {
			s.drop(p)
		}
		fail("write", err)
	}
}

// sqlLiteral writes a text-protocol value v of column type typ as an SQL literal of the same
// type: NULL, a number, or a utf8mb4 string in hexadecimal (no quoting to get wrong).
func sqlLiteral(v []byte, typ byte) string {
	switch {
	case v == nil || typ == mywire.TypeNull:
		return "NULL"
	case typ == mywire.TypeLongLong || typ == mywire.TypeDouble || typ == mywire.TypeDecimal:
		if _, err := strconv.ParseFloat(string(v), 64); err == nil {
			return string(v)
		}
	}
	return "CONVERT(X'" + hex.EncodeToString(v) + "' USING utf8mb4)"
}
