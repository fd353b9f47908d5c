package myproxy

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/baton-proxy/baton/proxy/admit"
	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/topology"
)

// loginGuard is the server's per-user session counts and failed-login backoff. The zero value
// is ready.
type loginGuard struct {
	users admit.Counts

	mu         sync.Mutex
	backoff    *admit.Backoff
	backoffMax time.Duration
}

func (g *loginGuard) backoffFor(l *topology.Limits) *admit.Backoff {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m := l.LoginBackoffMax(); g.backoff == nil || g.backoffMax != m {
		g.backoff, g.backoffMax = admit.NewBackoff(m, nil), m
	}
	return g.backoff
}

// loginWait delays a login from an address with many recent failures, within the startup
// timeout.
func (s *Server) loginWait(addr net.Addr) {
	l := &s.config().Limits
	d := min(s.guard.backoffFor(l).Delay(addr), l.StartupTimeout.D()/2)
	if d > 0 {
		time.Sleep(d) // deliberate: a brute-force attempt waits before its password is checked
	}
}

// loginFailed records a failed login from addr.
func (s *Server) loginFailed(addr net.Addr) { s.guard.backoffFor(&s.config().Limits).Failed(addr) }

// admitter makes auth count the session against limits.max_user_connections
// (users[].max_client_connections) once its credentials proved right, refusing it over the
// limit with MySQL's 1203 instead of the OK. The returned function ends the count (a no-op when
// nothing was counted); call it once the session ends, or at once when Run failed.
func (s *Server) admitter(auth *mywire.ServerAuth, name string, fromDB bool) (release func()) {
	var mu sync.Mutex
	var rel func()
	auth.Admit = func() *mywire.ERR {
		var u *topology.User
		if !fromDB {
			u = s.config().User(name)
		}
		r, ok := s.guard.users.Acquire(name, s.config().MaxConnectionsOf(u))
		if !ok {
			return &mywire.ERR{Code: 1203, State: "42000",
				Message: fmt.Sprintf("User %s already has more than 'max_user_connections' active connections", name)}
		}
		mu.Lock()
		rel = r
		mu.Unlock()
		return nil
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if rel != nil {
			rel()
			rel = nil
		}
	}
}
