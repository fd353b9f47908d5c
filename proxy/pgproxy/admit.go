package pgproxy

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/baton-proxy/baton/proxy/admit"
	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/topology"
)

// loginGuard is the server's per-user and per-database session counts and its failed-login
// backoff. The zero value is ready.
type loginGuard struct {
	users, dbs admit.Counts

	heldMu sync.Mutex
	held   map[*session]func() // the counts a session holds, released when it ends (drop)

	mu         sync.Mutex
	backoff    *admit.Backoff
	backoffMax time.Duration // what backoff was made with
}

// backoffFor returns the backoff for the limits in force, made anew when its cap changed.
func (g *loginGuard) backoffFor(l *topology.Limits) *admit.Backoff {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m := l.LoginBackoffMax(); g.backoff == nil || g.backoffMax != m {
		g.backoff, g.backoffMax = admit.NewBackoff(m, nil), m
	}
	return g.backoff
}

// loginWait delays a login from an address with many recent failures (never past deadline).
func (s *Server) loginWait(addr net.Addr, deadline time.Time) {
	d := s.guard.backoffFor(&s.config().Limits).Delay(addr)
	if d <= 0 {
		return
	}
	if left := time.Until(deadline) - 100*time.Millisecond; d > left {
		d = left
	}
	if d > 0 {
		time.Sleep(d) // deliberate: a brute-force attempt waits before its password is checked
	}
}

// loginFailed records a failed login from addr.
func (s *Server) loginFailed(addr net.Addr) { s.guard.backoffFor(&s.config().Limits).Failed(addr) }

// admitSession counts a session of user u on database db against limits.max_user_connections
// (users[].max_client_connections) and limits.max_db_connections. Over a limit it returns the
// FATAL PostgreSQL sends (53300, the role checked first as on the server); else the function
// that ends the count when the session ends.
func (s *Server) admitSession(u *topology.User, db string) (release func(), fatal []byte) {
	cl := s.config()
	relUser, ok := s.guard.users.Acquire(u.Name, cl.MaxConnectionsOf(u))
	if !ok {
		return nil, pgwire.AppendError(nil, pgwire.SevFatal, "53300", fmt.Sprintf("too many connections for role %q", u.Name))
	}
	relDB, ok := s.guard.dbs.Acquire(db, cl.Limits.MaxDBConnections)
	if !ok {
		relUser()
		return nil, pgwire.AppendError(nil, pgwire.SevFatal, "53300", fmt.Sprintf("too many connections for database %q", db))
	}
	return func() { relDB(); relUser() }, nil
}

// hold records that sess holds the counts release ends. A session may outlive serveConn
// (parked sessions resume on other goroutines), so the counts end with the session: drop,
// called by unregister from its cleanup.
func (g *loginGuard) hold(sess *session, release func()) {
	g.heldMu.Lock()
	defer g.heldMu.Unlock()
	if g.held == nil {
		g.held = map[*session]func(){}
	}
	g.held[sess] = release
}

// drop ends the counts sess holds (once; later calls do nothing).
func (g *loginGuard) drop(sess *session) {
	g.heldMu.Lock()
	release := g.held[sess]
	delete(g.held, sess)
	g.heldMu.Unlock()
	if release != nil {
		release()
	}
}
