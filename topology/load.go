package topology

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// Error is a configuration error located in a file.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // e.g. clusters[0].nodes[1].address; "" when the file as a whole is wrong
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, decodes, defaults and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

var yamlLineRe = regexp.MustCompile(`^\[(\d+):(\d+)\]\s*(.*)$`)

// Parse decodes and validates configuration bytes; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	cfg := &Config{File: name, Admin: Admin{Listen: DefaultAdminListen}}
	if err := yaml.UnmarshalWithOptions(data, cfg, yaml.DisallowUnknownField()); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) { // a value of ours (Duration, ByteSize) refused its text
			line := fe.line
			if line == 0 {
				line = lineOf(data, fe.path)
			}
			return nil, &Error{File: name, Line: line, Field: strings.TrimPrefix(fe.path, "$."), Msg: fe.msg}
		}
		e := &Error{File: name, Msg: err.Error()}
		// goccy errors read "[line:col] message\n  source excerpt"; keep the first line.
		first := strings.SplitN(yaml.FormatError(err, false, false), "\n", 2)[0]
		if m := yamlLineRe.FindStringSubmatch(first); m != nil {
			fmt.Sscanf(m[1], "%d", &e.Line)
			e.Msg = m[3]
		}
		return nil, e
	}
	markExplicitZeros(data, cfg)
	if err := cfg.validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, &Error{File: name, Line: lineOf(data, fe.path), Field: strings.TrimPrefix(fe.path, "$."), Msg: fe.msg}
		}
		return nil, &Error{File: name, Msg: err.Error()}
	}
	return cfg, nil
}

// lineOf finds the line of a YAML path, walking up to the nearest existing parent.
func lineOf(data []byte, path string) int {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return 0
	}
	for p := path; p != "" && p != "$"; p = parentPath(p) {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		n, err := yp.FilterFile(f)
		if err == nil && n != nil && n.GetToken() != nil {
			return n.GetToken().Position.Line
		}
	}
	return 0
}

// markExplicitZeros records which clusters name max_lag / max_lag_bytes / read_your_writes_wait
// (and failover.max_data_loss, pool.server_lifetime, pool.reserve_size), so that a written 0
// ("no bound") is told apart from an absent field (the default). data has already decoded.
func markExplicitZeros(data []byte, cfg *Config) {
	var raw struct {
		Clusters []map[string]any `yaml:"clusters"`
	}
	if yaml.Unmarshal(data, &raw) != nil {
		return
	}
	for i, m := range raw.Clusters {
		if i < len(cfg.Clusters) && cfg.Clusters[i] != nil {
			_, cfg.Clusters[i].maxLagSet = m["max_lag"]
			_, cfg.Clusters[i].maxLagBytesSet = m["max_lag_bytes"]
			_, cfg.Clusters[i].rywWaitSet = m["read_your_writes_wait"]
			if f, ok := m["failover"].(map[string]any); ok {
				_, cfg.Clusters[i].Failover.maxDataLossSet = f["max_data_loss"]
			}
			if l, ok := m["limits"].(map[string]any); ok {
				_, cfg.Clusters[i].Limits.parkIdleAfterSet = l["park_idle_after"]
			}
			if p, ok := m["pool"].(map[string]any); ok {
				_, cfg.Clusters[i].Pool.serverLifetimeSet = p["server_lifetime"]
				_, cfg.Clusters[i].Pool.reserveSizeSet = p["reserve_size"]
			}
		}
	}
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i > 0 {
		return p[:i]
	}
	return ""
}

func (c *Config) validate() error {
	if c.Etcd.Prefix == "" {
		c.Etcd.Prefix = "/baton"
	}
	if c.Etcd.LeaseTTL == 0 {
		c.Etcd.LeaseTTL = Duration(5 * time.Second)
	}
	if c.Etcd.LeaseTTL.D() < time.Second {
		return ferr("$.etcd.lease_ttl", "must be at least 1s")
	}
	if c.Etcd.ListenClient != "" {
		if len(c.Etcd.Endpoints) > 0 {
			return ferr("$.etcd.listen_client", "applies to the embedded server only: remove it or the endpoints")
		}
		if err := validAddress(c.Etcd.ListenClient); err != nil {
			return ferr("$.etcd.listen_client", "%v", err)
		}
	}
	if !strings.HasPrefix(c.Etcd.Prefix, "/") {
		return ferr("$.etcd.prefix", "must start with /")
	}
	if len(c.Clusters) == 0 {
		return ferr("$.clusters", "at least one cluster is required")
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return ferr("$.log_level", "must be debug, info, warn or error, not %q", c.LogLevel)
	}
	names := map[string]bool{}
	listens := map[string]bool{}
	for i, cl := range c.Clusters {
		p := fmt.Sprintf("$.clusters[%d]", i)
		if cl == nil {
			return ferr(p, "empty cluster")
		}
		cl.applyDefaults()
		if err := cl.validate(p); err != nil {
			return err
		}
		if names[cl.Name] {
			return ferr(p+".name", "duplicate cluster name %q", cl.Name)
		}
		names[cl.Name] = true
		if listens[cl.Listen] {
			return ferr(p+".listen", "address %s is used by another cluster", cl.Listen)
		}
		listens[cl.Listen] = true
	}
	return c.Admin.validate("$.admin")
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (c *Cluster) validate(p string) error {
	if !nameRe.MatchString(c.Name) {
		return ferr(p+".name", "must be 1–63 letters, digits, '_', '.', '-' (got %q)", c.Name)
	}
	switch c.Engine {
	case EnginePostgres, EngineMySQL:
	case "":
		return ferr(p+".engine", "required: postgres or mysql")
	default:
		return ferr(p+".engine", "must be postgres or mysql, not %q", c.Engine)
	}
	if err := validAddress(c.Listen); err != nil {
		return ferr(p+".listen", "%v", err)
	}
	switch c.Consistency {
	case Eventual, ReadYourWrites, PrimaryOnly:
	default:
		return ferr(p+".consistency", "must be eventual, read_your_writes or primary, not %q", c.Consistency)
	}
	if err := validPoolMode(c.PoolMode, c.Engine); err != nil {
		return ferr(p+".pool_mode", "%v", err)
	}
	for i, u := range c.Users {
		if u.PoolMode != "" {
			if err := validPoolMode(u.PoolMode, c.Engine); err != nil {
				return ferr(fmt.Sprintf("%s.users[%d].pool_mode", p, i), "%v", err)
			}
		}
	}
	if len(c.Nodes) == 0 {
		return ferr(p+".nodes", "at least one node is required")
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		np := fmt.Sprintf("%s.nodes[%d]", p, i)
		if n == nil {
			return ferr(np, "empty node")
		}
		if !nameRe.MatchString(n.Name) {
			return ferr(np+".name", "must be 1–63 letters, digits, '_', '.', '-' (got %q)", n.Name)
		}
		if seen[n.Name] {
			return ferr(np+".name", "duplicate node name %q", n.Name)
		}
		seen[n.Name] = true
		if err := validAddress(n.Address); err != nil {
			return ferr(np+".address", "%v", err)
		}
		if n.Weight != nil && *n.Weight < 0 {
			return ferr(np+".weight", "must be ≥ 0")
		}
	}
	if len(c.Users) == 0 {
		return ferr(p+".users", "at least one user is required")
	}
	users := map[string]bool{}
	for i, u := range c.Users {
		up := fmt.Sprintf("%s.users[%d]", p, i)
		if u == nil || u.Name == "" {
			return ferr(up+".name", "required")
		}
		if users[u.Name] {
			return ferr(up+".name", "duplicate user %q", u.Name)
		}
		users[u.Name] = true
		if err := u.resolveSecrets(up); err != nil {
			return err
		}
		if err := validAuth(c.Engine, u.Auth); err != nil {
			return ferr(up+".auth", "%v", err)
		}
		if u.Auth != "trust" && u.Password == "" {
			return ferr(up+".password", "required for auth %s (or use password_env / password_file)", u.Auth)
		}
	}
	if err := c.AuthQuery.validate(p+".auth_query", c); err != nil {
		return err
	}
	if err := c.validateUserLimits(p); err != nil {
		return err
	}
	if c.MonitorUser != "" && !users[c.MonitorUser] {
		return ferr(p+".monitor_user", "no user %q in users", c.MonitorUser)
	}
	if c.Failover.User != "" && !users[c.Failover.User] {
		return ferr(p+".failover.user", "no user %q in users", c.Failover.User)
	}
	if f := &c.Failover; f.ReplicationPasswordEnv != "" {
		if f.ReplicationPassword != "" {
			return ferr(p+".failover.replication_password_env", "set only one of replication_password, replication_password_env")
		}
		v, ok := os.LookupEnv(f.ReplicationPasswordEnv)
		if !ok {
			return ferr(p+".failover.replication_password_env", "environment variable %s is not set", f.ReplicationPasswordEnv)
		}
		f.ReplicationPassword = Secret(v)
	}
	if c.PrimaryReadWeight < 0 {
		return ferr(p+".primary_read_weight", "must be ≥ 0")
	}
	if c.FailureThreshold < 0 || c.Buffer.MaxRequests < 0 || c.Failover.MaxLostTransactions < 0 {
		return ferr(p, "failure_threshold, buffer.max_requests and failover.max_lost_transactions must be ≥ 0")
	}
	if c.ConfirmProbes < 0 || c.ConfirmProbes > 20 {
		return ferr(p+".confirm_probes", "must be between 1 and 20 (0: the default %d)", DefaultConfirmProbes)
	}
	if c.ConfirmInterval < 0 || c.ConfirmInterval.D() > time.Second {
		return ferr(p+".confirm_interval", "must be between 0 and 1s (0: the default %v)", DefaultConfirmInterval)
	}
	if c.Failover.Grace < 0 {
		return ferr(p+".failover.grace", "must be ≥ 0")
	}
	if c.Pool.MaxPerNode < 0 || c.Pool.MinIdle < 0 || c.Limits.MaxClients < 0 {
		return ferr(p, "pool and limit counts must be ≥ 0")
	}
	if c.Pool.Size < 0 {
		return ferr(p+".pool.size", "must be ≥ 1 (connections per node, user and database)")
	}
	if c.Pool.ReserveSize < 0 {
		return ferr(p+".pool.reserve_size", "must be ≥ 0 (0: no reserve)")
	}
	if c.Pool.ReserveTimeout < 0 {
		return ferr(p+".pool.reserve_timeout", "must be ≥ 0")
	}
	if c.Pool.AcquireTimeout < 0 {
		return ferr(p+".pool.acquire_timeout", "must be > 0")
	}
	if c.ReadYourWritesWait < 0 {
		return ferr(p+".read_your_writes_wait", "must be ≥ 0")
	}
	if c.Engine == EngineMySQL && c.MaxLagBytes > 0 {
		return ferr(p+".max_lag_bytes", "applies to PostgreSQL only: MySQL and MariaDB do not report replica lag in bytes (use max_lag)")
	}
	if c.Limits.MaxMessageSize < 1024 {
		return ferr(p+".limits.max_message_size", "must be at least 1KiB")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return ferr(p+".tls", "set both cert_file and key_file, or neither")
	}
	if c.TLS.Require && !c.TLS.Enabled() {
		return ferr(p+".tls.require", "needs cert_file and key_file")
	}
	return c.validateBackendTLS(p)
}

func validAuth(e Engine, a string) error {
	ok := map[Engine][]string{
		EnginePostgres: {"scram-sha-256", "md5", "trust"},
		EngineMySQL:    {"mysql_native_password", "caching_sha2_password"},
	}[e]
	for _, v := range ok {
		if a == v {
			return nil
		}
	}
	return fmt.Errorf("must be one of %s, not %q", strings.Join(ok, ", "), a)
}

// MonitorCredentials returns the user the probes connect as.
func (c *Cluster) MonitorCredentials() *User {
	for _, u := range c.Users {
		if u.Name == c.MonitorUser {
			return u
		}
	}
	return c.Users[0]
}

// User looks a user up by name; nil when absent.
func validPoolMode(m PoolMode, e Engine) error {
	switch m {
	case PoolSession, PoolTransaction:
		return nil
	}
	return fmt.Errorf("must be session or transaction, not %q", m)
}

// PoolModeOf returns the pool mode of user u's sessions (the user's own, else the cluster's).
func (c *Cluster) PoolModeOf(u *User) PoolMode {
	if u != nil && u.PoolMode != "" {
		return u.PoolMode
	}
	return c.PoolMode
}

func (c *Cluster) User(name string) *User {
	for _, u := range c.Users {
		if u.Name == name {
			return u
		}
	}
	return nil
}
