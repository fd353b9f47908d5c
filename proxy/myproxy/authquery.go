package myproxy

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/proxy/dbusers"
	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/topology"
)

// Users from the database (auth_query, topology.AuthQuery): a client whose name is not among
// the configured users is looked up with the cluster's query (a SQL SECURITY DEFINER view of
// the accounts' authentication_string and plugin). A mysql_native_password account is
// authenticated against its stored SHA1(SHA1(password)); the SHA1(password) its scramble
// reveals logs in to the backends (mywire/auth_dbsecret.go). Other plugins cannot work that
// way: such accounts are refused like a wrong password, and baton logs why.

// dbUsers is the server's auth_query state. The zero value is ready.
type dbUsers struct {
	mu    sync.Mutex
	cache *dbusers.Cache[*mywire.Credential]
	ttl   time.Duration
	max   int
	keys  map[string][]byte // backend user → SHA1(password) of its newest login
}

// errLookupText is what a client sees when no node answered the lookup.
const errLookupText = "baton cannot look up the user now (no database node answered); retry later"

func (d *dbUsers) cacheFor(aq *topology.AuthQuery) *dbusers.Cache[*mywire.Credential] {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache == nil || d.ttl != aq.CacheTTL.D() || d.max != aq.MaxCached {
		d.cache = dbusers.New[*mywire.Credential](aq.CacheTTL.D(), aq.MaxCached)
		d.ttl, d.max = aq.CacheTTL.D(), aq.MaxCached
	}
	return d.cache
}

func (d *dbUsers) key(user string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys[user]
}

func (d *dbUsers) setKey(user string, k []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k == nil {
		delete(d.keys, user)
		return
	}
	if d.keys == nil {
		d.keys = map[string][]byte{}
	}
	d.keys[user] = k
}

// passwordSHA1 is the SHA1(password) a backend login of user answers with: nil for a user
// with a configured password.
func (p *nodePool) passwordSHA1(user, password string) []byte {
	if password != "" || p.dbu == nil {
		return nil
	}
	return p.dbu.key(user)
}

// clientCred returns the credential a client named user authenticates against: the configured
// one, else (auth_query on) the database's, else nil (unknown: the exchange fails as for a
// wrong password). fromDB tells which. err: the lookup failed (no node answered).
func (s *Server) clientCred(user string) (cred *mywire.Credential, fromDB bool, err error) {
	st := s.st.Load()
	aq := st.cl.AuthQuery
	if c := st.creds[user]; c != nil || !aq.Enabled() || user == "" {
		return c, false, nil
	}
	cred, found, err := s.dbu.cacheFor(aq).Get(user, s.lookupUser)
	if err != nil {
		s.log.Warn("auth_query lookup failed", "cluster", st.cl.Name, "user", user, "error", err)
		return nil, true, err
	}
	if !found {
		s.dbu.setKey(user, nil) // a dropped account opens no new backend connections
		return nil, true, nil
	}
	return cred, true, nil
}

// sessionUser returns the user a session that authenticated as name runs as, recording the
// backend key of a user from the database.
func (s *Server) sessionUser(name string, fromDB bool, auth *mywire.ServerAuth) *topology.User {
	if !fromDB {
		return s.config().User(name)
	}
	s.dbu.setKey(name, auth.PasswordSHA1)
	return &topology.User{Name: name, BackendUser: name, Auth: mywire.PluginNativePassword}
}

// lookupUser runs the auth_query on the preferred node, then the others until one answers.
func (s *Server) lookupUser(user string) (*mywire.Credential, bool, error) {
	cl := s.config()
	aq := cl.AuthQuery
	return dbusers.FirstAnswer(dbusers.Nodes(s.live.Load(), aq.PreferReplica()), func(addr string) (*mywire.Credential, bool, error) {
		return s.lookupOn(cl, aq, addr, user)
	})
}

// lookupOn runs the query on one node as the lookup account. The query returns (user,
// authentication_string[, plugin]); a missing plugin column means mysql_native_password.
func (s *Server) lookupOn(cl *topology.Cluster, aq *topology.AuthQuery, addr, user string) (*mywire.Credential, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cl.Pool.ConnectTimeout.D()+cl.ProbeTimeout.D())
	defer cancel()
	nt, err := cl.NodeTLSAt(addr)
	if err != nil {
		return nil, false, err
	}
	conn, err := health.MyConnector(health.MyConfig(addr, aq.User, aq.Password.Reveal(), aq.Database), nt)
	if err != nil {
		return nil, false, err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	rows, err := db.QueryContext(ctx, aq.Query, user)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, false, err
	}
	if len(cols) < 2 {
		return nil, false, fmt.Errorf("the auth_query returns %d columns; want user, authentication_string[, plugin]", len(cols))
	}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, false, err
		}
		if vals[0].String != user || !vals[1].Valid {
			continue
		}
		plugin := mywire.PluginNativePassword
		if len(vals) > 2 && vals[2].String != "" {
			plugin = vals[2].String
		}
		if plugin != mywire.PluginNativePassword {
			s.log.Warn("auth_query: the account cannot log in through baton: only mysql_native_password accounts can (see the README)",
				"cluster", cl.Name, "user", user, "plugin", plugin)
			return nil, false, rows.Err()
		}
		hash, err := mywire.ParseNativeHash(vals[1].String)
		if err != nil {
			s.log.Warn("auth_query: the account cannot log in through baton", "cluster", cl.Name, "user", user, "reason", err)
			return nil, false, rows.Err()
		}
		return &mywire.Credential{User: user, Plugin: mywire.PluginNativePassword, NativeHash: hash}, true, rows.Err()
	}
	return nil, false, rows.Err()
}
