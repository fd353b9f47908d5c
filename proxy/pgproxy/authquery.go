package pgproxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/proxy/dbusers"
	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Users from the database (auth_query, topology.AuthQuery): a client whose name is not among
// the configured users is looked up with the cluster's query (a SECURITY DEFINER function that
// returns the role's rolpassword), authenticated against that verifier, and logged in to the
// backends with the key its own login proved (pgwire.AuthenticateKey, pgwire.Login).

// dbUsers is the server's auth_query state. The zero value is ready.
type dbUsers struct {
	mu    sync.Mutex
	cache *dbusers.Cache[*pgwire.Credential]
	ttl   time.Duration // what cache was made with
	max   int
	keys  map[string]*pgwire.BackendKey // backend user → the key of its newest login
}

// errLookup is what a client sees when the lookup itself failed (no node answered).
const errLookupText = "baton cannot look up the user now (no database node answered); retry later"

// cacheFor returns the lookup cache for the configuration aq, made anew when its TTL or bound
// changed.
func (d *dbUsers) cacheFor(aq *topology.AuthQuery) *dbusers.Cache[*pgwire.Credential] {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache == nil || d.ttl != aq.CacheTTL.D() || d.max != aq.MaxCached {
		d.cache = dbusers.New[*pgwire.Credential](aq.CacheTTL.D(), aq.MaxCached)
		d.ttl, d.max = aq.CacheTTL.D(), aq.MaxCached
	}
	return d.cache
}

// key returns the newest backend key of user, or nil.
func (d *dbUsers) key(user string) *pgwire.BackendKey {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys[user]
}

// setKey records (k != nil) or forgets (k == nil) the backend key of user.
func (d *dbUsers) setKey(user string, k *pgwire.BackendKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k == nil {
		delete(d.keys, user)
		return
	}
	if d.keys == nil {
		d.keys = map[string]*pgwire.BackendKey{}
	}
	d.keys[user] = k
}

// authenticate runs the client's authentication and returns the user the session runs as: a
// configured user, else (auth_query on) the role from the database, else the mock exchange
// fails as for a wrong password. On failure the error has been sent to the client.
func (s *Server) authenticate(be *pgproto3.Backend, user string, tlsState *tls.ConnectionState) (*topology.User, error) {
	st := s.st.Load()
	aq := st.cl.AuthQuery
	if cred := st.creds[user]; cred != nil || !aq.Enabled() || user == "" {
		if err := pgwire.Authenticate(be, user, cred, tlsState); err != nil {
			return nil, err
		}
		return st.cl.User(user), nil
	}
	cred, found, err := s.dbu.cacheFor(aq).Get(user, s.lookupUser)
	if err != nil {
		s.log.Warn("auth_query lookup failed", "cluster", st.cl.Name, "user", user, "error", err)
		be.Send(&pgproto3.ErrorResponse{Severity: pgwire.SevFatal, SeverityUnlocalized: pgwire.SevFatal,
			Code: "08006", Message: errLookupText})
		be.Flush()
		return nil, fmt.Errorf("%w: user %q: lookup: %w", pgwire.ErrAuthFailed, user, err)
	}
	if !found {
		s.dbu.setKey(user, nil) // a dropped role opens no new backend connections
		cred = nil
	}
	key, err := pgwire.AuthenticateKey(be, user, cred, tlsState)
	if err != nil {
		return nil, err
	}
	if key == nil {
		// Cannot happen for a database credential (SCRAM or md5 secret), but never log in to
		// the backends with nothing.
		return nil, fmt.Errorf("%w: user %q: no backend key from the login", pgwire.ErrAuthFailed, user)
	}
	s.dbu.setKey(user, key)
	return &topology.User{Name: user, BackendUser: user, Auth: string(cred.Method)}, nil
}

// lookupUser runs the auth_query for user on the preferred node, then on the others until one
// answers. found is false when the query returns no row (or a NULL/unusable secret: such a
// role cannot log in with a password on the server either).
func (s *Server) lookupUser(user string) (*pgwire.Credential, bool, error) {
	cl := s.config()
	aq := cl.AuthQuery
	return dbusers.FirstAnswer(dbusers.Nodes(s.live.Load(), aq.PreferReplica()), func(addr string) (*pgwire.Credential, bool, error) {
		return s.lookupOn(cl, aq, addr, user)
	})
}

// lookupOn runs the query on one node as the lookup account.
func (s *Server) lookupOn(cl *topology.Cluster, aq *topology.AuthQuery, addr, user string) (*pgwire.Credential, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cl.Pool.ConnectTimeout.D()+cl.ProbeTimeout.D())
	defer cancel()
	nt, err := cl.NodeTLSAt(addr)
	if err != nil {
		return nil, false, err
	}
	conn, err := health.ConnectPG(ctx, addr, aq.User, aq.Password.Reveal(), aq.Database, "baton-auth-query", health.PGWithTLS(nt))
	if err != nil {
		return nil, false, err
	}
	defer conn.Close(context.Background())
	res := conn.ExecParams(ctx, aq.Query, [][]byte{[]byte(user)}, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, false, res.Err
	}
	for _, r := range res.Rows {
		if len(r) < 2 || string(r[0]) != user || r[1] == nil {
			continue
		}
		cred, err := pgwire.CredentialFromRolPassword(user, string(r[1]))
		if err != nil {
			s.log.Warn("auth_query: the role cannot log in through baton", "cluster", cl.Name, "user", user, "reason", err)
			return nil, false, nil
		}
		return cred, true, nil
	}
	return nil, false, nil
}
