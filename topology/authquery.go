package topology

import (
	"os"
	"strings"
	"time"
)

// AuthQuery makes the database the source of client users (PgBouncer's auth_query): a client
// whose name is not among the cluster's users is looked up with Query, run as User, and
// authenticated against the secret the database stores for it (PostgreSQL: the role's SCRAM
// verifier or md5 hash; MySQL/MariaDB: the mysql_native_password hash). baton then logs in to
// the backends as that user with what the client proved, never with a plaintext password.
// Configured users win on a name clash. Off unless the section is present (and not off).
type AuthQuery struct {
	// Off disables the section without removing it.
	Off bool `yaml:"off"`
	// User / Password / PasswordEnv: the lookup account. It needs only the right to run Query
	// (PostgreSQL: EXECUTE on the lookup function; MySQL/MariaDB: SELECT on the lookup view).
	User        string `yaml:"user"`
	Password    Secret `yaml:"password"`
	PasswordEnv string `yaml:"password_env"`
	// Query returns one row (name, secret[, plugin]) for the user passed as its one parameter,
	// and no row for a user that may not log in. Default DefaultPGAuthQuery /
	// DefaultMyAuthQuery.
	Query string `yaml:"query"`
	// Database is where the lookup connects. PostgreSQL: where the function is installed;
	// default the cluster's database, else "postgres". MySQL/MariaDB: default none (the
	// default query names its view with its schema, and the lookup account needs no other
	// privilege).
	Database string `yaml:"database"`
	// CacheTTL is how long an answer (found or not found) is used before the next lookup: a
	// new, changed or dropped user takes effect within it. Default 30s.
	CacheTTL Duration `yaml:"cache_ttl"`
	// MaxCached bounds the cached answers (found and not found together; oldest dropped
	// first), so that probing many names cannot grow baton's memory. Default 10000.
	MaxCached int `yaml:"max_cached"`
	// Node is where the lookup runs: "primary" (default; a readable replica when the primary
	// is unreachable) or "replica" (a readable replica, the primary when none is).
	Node string `yaml:"node"`
}

// Default lookups. The PostgreSQL one calls a SECURITY DEFINER function the DBA installs (see
// the README); the MySQL one reads a SQL SECURITY DEFINER view of mysql.user.
const (
	DefaultPGAuthQuery  = "SELECT usename, passwd FROM baton.user_lookup($1)"
	DefaultMyAuthQuery  = "SELECT user, authentication_string, plugin FROM baton.user_lookup WHERE user = ?"
	DefaultAuthCacheTTL = 30 * time.Second
	DefaultAuthMaxCache = 10000
)

// Enabled reports whether users are looked up in the database.
func (a *AuthQuery) Enabled() bool { return a != nil && !a.Off }

// PreferReplica reports whether lookups go to a replica first.
func (a *AuthQuery) PreferReplica() bool { return a.Node == "replica" }

// applyDefaults fills the section's defaults for a cluster of engine e.
func (a *AuthQuery) applyDefaults(c *Cluster) {
	if !a.Enabled() {
		return
	}
	if a.Query == "" {
		if c.Engine == EngineMySQL {
			a.Query = DefaultMyAuthQuery
		} else {
			a.Query = DefaultPGAuthQuery
		}
	}
	if a.Database == "" && c.Engine == EnginePostgres {
		a.Database = c.Database
		if a.Database == "" {
			a.Database = "postgres"
		}
	}
	orDefault(&a.CacheTTL, Duration(DefaultAuthCacheTTL))
	orDefault(&a.MaxCached, DefaultAuthMaxCache)
	orDefault(&a.Node, "primary")
}

// validate checks the section of cluster c at YAML path p (…auth_query) and resolves
// password_env. It applies the defaults first.
func (a *AuthQuery) validate(p string, c *Cluster) error {
	if !a.Enabled() {
		return nil
	}
	a.applyDefaults(c)
	if a.User == "" {
		return ferr(p+".user", "required: the account that runs the lookup query")
	}
	if a.Password != "" && a.PasswordEnv != "" {
		return ferr(p+".password", "set only one of password, password_env")
	}
	if a.PasswordEnv != "" {
		v, ok := os.LookupEnv(a.PasswordEnv)
		if !ok {
			return ferr(p+".password_env", "environment variable %s is not set", a.PasswordEnv)
		}
		a.Password = Secret(v)
	}
	want := "$1"
	if c.Engine == EngineMySQL {
		want = "?"
	}
	if !strings.Contains(a.Query, want) {
		return ferr(p+".query", "must take the user name as its parameter %s", want)
	}
	switch a.Node {
	case "primary", "replica":
	default:
		return ferr(p+".node", "must be primary or replica, not %q", a.Node)
	}
	if a.CacheTTL.D() < 0 || a.MaxCached < 1 {
		return ferr(p, "cache_ttl must be ≥ 0 and max_cached ≥ 1")
	}
	return nil
}

// EnableAuthQuery turns users from the database on for c with a: it fills a's defaults and
// checks it as Load would (for programs that build a configuration, such as the demo).
func (c *Cluster) EnableAuthQuery(a *AuthQuery) error {
	if err := a.validate("auth_query", c); err != nil {
		return err
	}
	c.AuthQuery = a
	return nil
}
