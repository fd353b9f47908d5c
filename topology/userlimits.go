package topology

import (
	"fmt"
	"time"
)

// DefaultLoginBackoff caps the wait of a login from a client address with many recent failed
// logins (limits.login_backoff).
const DefaultLoginBackoff = 2 * time.Second

// LoginBackoffMax is the cap of the failed-login backoff: limits.login_backoff, default
// DefaultLoginBackoff; 0 turns the backoff off.
func (l *Limits) LoginBackoffMax() time.Duration {
	if l.LoginBackoff == nil {
		return DefaultLoginBackoff
	}
	return l.LoginBackoff.D()
}

// MaxConnectionsOf is the most client sessions user u may have at once (0 = no limit): its
// max_client_connections, else the cluster's limits.max_user_connections. u may be a user from
// the database (auth_query), which has no limit of its own.
func (c *Cluster) MaxConnectionsOf(u *User) int {
	if u != nil && u.MaxClientConnections > 0 {
		return u.MaxClientConnections
	}
	return c.Limits.MaxUserConnections
}

// validateUserLimits checks the per-user and per-database limits of cluster c at YAML path p.
func (c *Cluster) validateUserLimits(p string) error {
	if c.Limits.MaxUserConnections < 0 {
		return ferr(p+".limits.max_user_connections", "must be ≥ 0 (0: no limit)")
	}
	if c.Limits.MaxDBConnections < 0 {
		return ferr(p+".limits.max_db_connections", "must be ≥ 0 (0: no limit)")
	}
	if c.Limits.MaxDBConnections > 0 && c.Engine == EngineMySQL {
		return ferr(p+".limits.max_db_connections", "applies to PostgreSQL only (MySQL and MariaDB have no per-database limit to mirror)")
	}
	for i, u := range c.Users {
		if u.MaxClientConnections < 0 {
			return ferr(fmt.Sprintf("%s.users[%d].max_client_connections", p, i), "must be ≥ 0 (0: limits.max_user_connections)")
		}
		if u.PoolSize < 0 {
			return ferr(fmt.Sprintf("%s.users[%d].pool_size", p, i), "must be ≥ 0 (0: pool.size)")
		}
	}
	return nil
}

// PoolSizes maps each backend user to its own pool size (users[].pool_size; the smallest when
// several users share a backend_user). Backend users without one are absent (pool.size).
func (c *Cluster) PoolSizes() map[string]int {
	m := map[string]int{}
	for _, u := range c.Users {
		if u.PoolSize <= 0 {
			continue
		}
		if cur, ok := m[u.BackendUser]; !ok || u.PoolSize < cur {
			m[u.BackendUser] = u.PoolSize
		}
	}
	return m
}
