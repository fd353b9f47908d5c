package pgproxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// resetSettings brings a connection that may carry another session's settings back to its
// login state: RESET ALL leaves the session authorization and the role alone (DISCARD ALL
// runs SET SESSION AUTHORIZATION DEFAULT for the same reason); a connection left running as
// another role must never serve the next session.
const resetSettings = "SET SESSION AUTHORIZATION DEFAULT;RESET ALL;RESET ROLE"

// startupSkip are startup-packet keys that are not run-time parameters.
var startupSkip = map[string]bool{"user": true, "database": true, "replication": true, "options": true}

// startupSQL turns the client's startup parameters into the statements that give a backend the
// same settings, in the order PostgreSQL applies them: the "options" switches first, then the
// other parameters (so client_encoding given both ways resolves to the direct parameter, as on
// the server). set_config parses a value as the server parses a startup value, so list-valued
// settings (search_path=a,b) keep their elements instead of becoming one quoted name.
func startupSQL(params map[string]string) (sql string, names []string) {
	var sets []string
	add := func(k, v string) {
		sets = append(sets, "SELECT pg_catalog.set_config("+quoteLiteral(k)+", "+quoteLiteral(v)+", false)")
		names = append(names, k)
	}
	for _, kv := range parseOptions(params["options"]) {
		add(kv[0], kv[1])
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		if !startupSkip[k] && !strings.HasPrefix(k, "_pq_.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, params[k])
	}
	return strings.Join(sets, ";"), names
}

// startupCache remembers, per startup statement text, the ParameterStatus values the server
// reported when it accepted them. Applications connect with the same parameters over and over:
// only a new combination costs a round trip to the primary at connect time.
type startupCache struct {
	mu sync.Mutex
	m  map[string]map[string]string
}

const startupCacheMax = 1024

func (c *startupCache) get(sql string) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[sql]
	return v, ok
}

func (c *startupCache) put(sql string, reported map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= startupCacheMax {
		c.m = map[string]map[string]string{}
	}
	c.m[sql] = reported
}

// checkStartup runs the session's startup statements on a connection to the primary (once per
// distinct parameter set; cached after) and returns the ParameterStatus values they changed.
// A refusal (unknown parameter, invalid value) comes back as *endSession with the server's error
// as a FATAL, which a direct connection gets.
func (s *Server) checkStartup(sess *session, sql string, names []string) (map[string]string, error) {
	if r, ok := s.startups.get(sql); ok {
		return r, nil
	}
	np, err := s.greetNode()
	if err != nil {
		return nil, err
	}
	be, err := sess.acquire(np)
	if err != nil {
		return nil, err
	}
	be.conn.SetDeadline(time.Now().Add(s.config().Limits.StartupTimeout.D()))
	defer be.conn.SetDeadline(time.Time{})
	// From the connection's own defaults (a pooled connection may carry another session's
	// settings), so that the server reports every value the startup parameters change.
	be.w.Write(pgwire.AppendQuery(nil, resetSettings+";"+sql))
	be.needReset = false
	if err := be.w.Flush(); err != nil {
		sess.drop(be)
		return nil, err
	}
	reported := map[string]string{}
	var setValues [][2]string
	var rejected []byte
	for {
		f, err := be.rd.Next()
		if err != nil {
			sess.drop(be)
			return nil, fmt.Errorf("node %s: %w", np.name, err)
		}
		switch f[0] {
		case 'S':
			var ps pgproto3.ParameterStatus
			if ps.Decode(pgwire.Body(f)) == nil {
				reported[ps.Name] = ps.Value
			}
		case 'D':
			// Each set_config answers the value it set, as the server shows it. The server
			// reports only values that differ from what it last reported on this connection,
			// which a pooled connection may already have had: take the answers.
			if b := pgwire.Body(f); len(b) >= 6 && len(names) > 0 {
				if n := int(int32(be32(b[2:6]))); n >= 0 && 6+n <= len(b) {
					setValues = append(setValues, [2]string{names[0], string(b[6 : 6+n])})
				}
				names = names[1:]
			}
		case 'E':
			if rejected == nil {
				rejected = asFatal(f)
			}
		case 'Z':
			if rejected != nil {
				return nil, &endSession{fatal: rejected, why: "the server rejected a startup parameter"}
			}
			be.applied = len(sess.history) // this connection has the session's settings now
			for _, kv := range setValues {
				for k := range np.serverParams() { // names the server reports, in its spelling
					if strings.EqualFold(k, kv[0]) {
						reported[k] = kv[1]
					}
				}
			}
			s.startups.put(sql, reported)
			return reported, nil
		}
	}
}

// asFatal re-encodes a server's ErrorResponse frame with severity FATAL.
func asFatal(f []byte) []byte {
	var e pgproto3.ErrorResponse
	if e.Decode(pgwire.Body(f)) != nil {
		return pgwire.AppendError(nil, pgwire.SevFatal, pgwire.ErrorCode(pgwire.Body(f)), "invalid startup parameter")
	}
	e.Severity, e.SeverityUnlocalized = pgwire.SevFatal, pgwire.SevFatal
	out, err := e.Encode(nil)
	if err != nil {
		return pgwire.AppendError(nil, pgwire.SevFatal, e.Code, e.Message)
	}
	return out
}

// greetNode is the node whose parameters a new session reports: the primary, else a replica.
func (s *Server) greetNode() (*nodePool, error) {
	snap := s.live.Load()
	var np *nodePool
	if p := snap.PrimaryNode(); p != nil {
		np = s.node(p.Name)
	} else if snap != nil && len(snap.Readable) > 0 {
		np = s.node(snap.Nodes[snap.Readable[0]].Name)
	}
	if np == nil {
		return nil, s.noNodeError(snap)
	}
	return np, nil
}

// greet checks the client's startup parameters, sends ParameterStatus, BackendKeyData and
// ReadyForQuery, registers the cancel key and records the startup parameters as session state
// to replay on every backend the session uses.
func (s *Server) greet(sess *session, params map[string]string) error {
	sp, err := s.serverParams(sess.key)
	if err != nil {
		return err
	}
	merged := make(map[string]string, len(sp))
	for k, v := range sp {
		merged[k] = v
	}
	sess.startupSerializable = startupSerializable(params)
	sess.serializable = sess.startupSerializable
	if sql, names := startupSQL(params); sql != "" {
		sess.startup = sql
		sess.history = append(sess.history, histEntry{sql: sql})
		reported, err := s.checkStartup(sess, sql, names)
		if err != nil {
			return err
		}
		for k, v := range reported {
			merged[k] = v
		}
	}
	names := make([]string, 0, len(merged))
	for k := range merged {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []byte
	for _, k := range names {
		out, _ = (&pgproto3.ParameterStatus{Name: k, Value: merged[k]}).Encode(out)
	}
	var key [8]byte
	rand.Read(key[:])
	pid := binary.BigEndian.Uint32(key[:4]) &^ (1 << 31)
	sess.keyID = uint64(pid)<<32 | uint64(binary.BigEndian.Uint32(key[4:]))
	out, _ = (&pgproto3.BackendKeyData{ProcessID: pid, SecretKey: key[4:]}).Encode(out)
	out = pgwire.AppendReady(out, 'I')
	s.mu.Lock()
	s.sessions[sess.keyID] = sess
	s.mu.Unlock()
	sess.checkIn() // transaction pooling: an idle new session holds no connection
	sess.cw.Write(out)
	return nil
}

// serverParams returns the reported parameters of the greeting node, dialing once if none is
// known yet.
func (s *Server) serverParams(key poolKey) (map[string]string, error) {
	np, err := s.greetNode()
	if err != nil {
		return nil, err
	}
	if p := np.serverParams(); p != nil {
		return p, nil
	}
	b, err := np.acquire(context.Background(), key)
	if err != nil {
		return nil, err
	}
	np.release(b, true)
	return np.serverParams(), nil
}

// parseOptions splits a startup "options" value as PostgreSQL does (pg_split_opts: white space
// separates, a backslash takes the next character literally) and returns its run-time settings:
// "-c a=b --c=d" → [[a b] [c d]]. Other switches are ignored.
func parseOptions(o string) [][2]string {
	var f []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(o); i++ {
		c := o[i]
		switch {
		case c == '\\' && i+1 < len(o):
			i++
			cur.WriteByte(o[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if in {
				f = append(f, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		f = append(f, cur.String())
	}
	var out [][2]string
	for i := 0; i < len(f); i++ {
		a := f[i]
		switch {
		case a == "-c" && i+1 < len(f):
			i++
			a = f[i]
		case strings.HasPrefix(a, "-c"):
			a = a[2:]
		case strings.HasPrefix(a, "--"):
			a = a[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(a, "="); ok {
			out = append(out, [2]string{strings.ReplaceAll(k, "-", "_"), v})
		}
	}
	return out
}
