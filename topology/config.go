package topology

import (
	"encoding"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Engine names the wire protocol and SQL dialect of a cluster.
type Engine string

// Supported engines.
const (
	EnginePostgres Engine = "postgres"
	EngineMySQL    Engine = "mysql"
)

// Consistency is a cluster's read-consistency mode (DESIGN §2).
type Consistency string

// PoolMode says how long a client session keeps a backend connection.
type PoolMode string

// Pool modes.
const (
	// PoolSession: a session keeps a connection to each node it uses until it ends.
	PoolSession PoolMode = "session"
	// PoolTransaction: a session holds a connection for one statement outside a transaction or
	// for one whole transaction; pinned state (temp tables, LISTEN, …) keeps it longer.
	PoolTransaction PoolMode = "transaction"
)

// Consistency modes.
const (
	Eventual       Consistency = "eventual"
	ReadYourWrites Consistency = "read_your_writes"
	PrimaryOnly    Consistency = "primary"
)

// Config is the whole configuration file.
type Config struct {
	// File is the path the configuration was loaded from (not part of the YAML).
	File string `yaml:"-"`

	LogLevel string     `yaml:"log_level"`
	Clusters []*Cluster `yaml:"clusters"`
	// Admin is the operator's HTTP endpoint: metrics, health and the JSON API.
	Admin Admin `yaml:"admin"`
	// Etcd is where baton instances share their view (DESIGN §3).
	Etcd Etcd `yaml:"etcd"`
}

// DefaultAdminListen is where the admin HTTP server listens unless admin.listen says otherwise.
const DefaultAdminListen = "127.0.0.1:9090"

// Etcd configures the shared state. No endpoints: baton runs an embedded single-member etcd.
type Etcd struct {
	// Endpoints of an external etcd cluster (e.g. http://10.0.0.5:2379). Empty: embedded.
	Endpoints []string `yaml:"endpoints"`
	// DataDir of the embedded server. Default: a new temporary directory, removed at exit.
	DataDir string `yaml:"data_dir"`
	// ListenClient is the host:port the embedded server serves clients on, so that other baton
	// instances can share it (their endpoints: [http://HOST:PORT]). Default: a free loopback port.
	ListenClient string `yaml:"listen_client"`
	// Prefix of baton's keys. Default /baton.
	Prefix string `yaml:"prefix"`
	// LeaseTTL of an instance's session: its keys vanish this long after it dies; an instance that
	// cannot reach etcd for half of it stops sending writes. Default 5s.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// Instance names this baton among the instances sharing the etcd. Default host-pid.
	Instance string `yaml:"instance"`
	// Off disables etcd entirely (a single stand-alone instance). Default false.
	Off bool `yaml:"off"`
}

// Admin configures the admin HTTP server (/metrics, /healthz, /readyz, /api/v1/…).
type Admin struct {
	// Listen is the server's address. Default 127.0.0.1:9090 (set by Load); "" or "off" disables
	// the server. A non-loopback address requires a token.
	Listen string `yaml:"listen"`
	// Token, when set, must be sent as "Authorization: Bearer TOKEN" on every endpoint except
	// /healthz. TokenEnv names an environment variable holding it instead.
	Token    Secret `yaml:"token"`
	TokenEnv string `yaml:"token_env"`
}

// Enabled reports whether the admin server should run.
func (a Admin) Enabled() bool { return a.Listen != "" && a.Listen != "off" }

// validate normalizes "off", resolves token_env and refuses an unauthenticated non-loopback
// listener. p is the YAML path of the section.
func (a *Admin) validate(p string) error {
	if a.Listen == "off" {
		a.Listen = ""
	}
	if a.Token != "" && a.TokenEnv != "" {
		return ferr(p+".token", "set only one of token, token_env")
	}
	if a.TokenEnv != "" {
		v, ok := os.LookupEnv(a.TokenEnv)
		if !ok || v == "" {
			return ferr(p+".token_env", "environment variable %s is not set", a.TokenEnv)
		}
		a.Token = Secret(v)
	}
	if a.Listen == "" {
		return nil
	}
	if err := validAddress(a.Listen); err != nil {
		return ferr(p+".listen", "%v (or \"off\" to disable the admin server)", err)
	}
	host, _, _ := net.SplitHostPort(a.Listen)
	ip := net.ParseIP(host)
	if a.Token == "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return ferr(p+".listen", "%s is not a loopback address: set admin.token or admin.token_env, or listen on 127.0.0.1", a.Listen)
	}
	return nil
}

// Cluster is one leader–follower database cluster and the listener baton serves it on.
type Cluster struct {
	Name        string      `yaml:"name"`
	Engine      Engine      `yaml:"engine"`
	Listen      string      `yaml:"listen"`
	Consistency Consistency `yaml:"consistency"`
	// PoolMode: transaction (default) or session; users[].pool_mode overrides it.
	PoolMode PoolMode `yaml:"pool_mode"`
	// Database is the default database for backend connections when the client names none.
	Database      string   `yaml:"database"`
	ProbeInterval Duration `yaml:"probe_interval"`
	ProbeTimeout  Duration `yaml:"probe_timeout"`
	Nodes         []*Node  `yaml:"nodes"`
	Users         []*User  `yaml:"users"`
	// LocalInfile lets MySQL clients use LOAD DATA LOCAL INFILE (sent to the primary). Default off.
	LocalInfile bool `yaml:"local_infile"`
	// MonitorUser is the account the health probes use; defaults to the first user.
	MonitorUser string `yaml:"monitor_user"`
	Pool        Pool   `yaml:"pool"`
	Limits      Limits `yaml:"limits"`
	TLS         TLS    `yaml:"tls"`
	// AuthQuery makes the database the source of client users (authquery.go). Default off.
	AuthQuery *AuthQuery `yaml:"auth_query"`

	// MaxLag: a replica whose data may be older than this serves no reads until it catches up.
	// Default 10s; 0 = no time bound. MySQL/MariaDB report lag in whole seconds.
	MaxLag Duration `yaml:"max_lag"`
	// MaxLagBytes: a replica whose replayed WAL is further than this behind the primary's current
	// WAL position serves no reads. PostgreSQL only. Default 16MiB; 0 = no byte bound.
	MaxLagBytes ByteSize `yaml:"max_lag_bytes"`
	// PrimaryReadWeight: the primary's share of reads outside transactions beside the readable
	// replicas' weights (1 with two weight-1 replicas: a third each). Default 0: the primary
	// serves such reads only when no replica can. It always holds a session's writes, so
	// read_your_writes reads may go there without waiting.
	PrimaryReadWeight int `yaml:"primary_read_weight"`
	// ReadYourWritesWait (consistency read_your_writes): when no replica is known to have applied
	// the session's last write, a read waits at most this long on one replica for it (PostgreSQL:
	// its replay LSN; MySQL/MariaDB: WAIT_FOR_EXECUTED_GTID_SET / MASTER_GTID_WAIT), then goes to
	// the primary. Default 1s; 0 = no wait, such reads go to the primary at once.
	ReadYourWritesWait Duration `yaml:"read_your_writes_wait"`
	// FailureThreshold is how many consecutive probes of a node must fail on weak evidence (a
	// timeout: a hung host, dropped packets; any error other than those of ConfirmProbes)
	// before this instance withdraws its etcd observation of the node (DESIGN §3). A hung node
	// is therefore withdrawn about failure_threshold × probe_timeout after it stops answering.
	// Default 2.
	FailureThreshold int `yaml:"failure_threshold"`
	// ConfirmProbes: strong evidence that a node is gone (a refused connection, a connection
	// reset or closed by the server, the server shutting down), from a probe or from a client
	// statement, starts this many probes of the node on new connections, confirm_interval
	// apart; when every one fails with strong evidence too, this instance withdraws its
	// observation at once rather than after failure_threshold probe rounds. Default 3.
	ConfirmProbes int `yaml:"confirm_probes"`
	// ConfirmInterval: the pause between confirmation probes. Default 30ms.
	ConfirmInterval Duration `yaml:"confirm_interval"`
	// Failover configures automatic failover and planned switchover.
	Failover Failover `yaml:"failover"`
	// Buffer bounds how statements are held while the primary changes.
	Buffer Buffer `yaml:"buffer"`
	// BackendTLS secures baton's connections to the servers (backendtls.go); nodes[].backend_tls
	// overrides it field by field.
	BackendTLS BackendTLS `yaml:"backend_tls"`

	// maxLagSet / maxLagBytesSet record that the file names the field, so that an explicit 0
	// means "no bound" rather than "use the default".
	maxLagSet, maxLagBytesSet, rywWaitSet bool
}

// Failover configures how the coordinator replaces a dead primary and runs switchovers.
type Failover struct {
	// Auto: fail over automatically when every instance has lost the primary for Grace. Default
	// true; false leaves it to `baton failover`. Needs etcd (not etcd.off).
	Auto *bool `yaml:"auto"`
	// Grace: how long every observation of the primary must have been gone before a failover
	// starts. Each observation is withdrawn only on confirmed evidence (confirm_probes or
	// failure_threshold), so grace covers instances disagreeing for a moment. Default 300ms.
	Grace Duration `yaml:"grace"`
	// MinInterval: no automatic failover within this long of the previous primary change
	// (anti-flap). Default 5m.
	MinInterval Duration `yaml:"min_interval"`
	// MaxDataLoss (PostgreSQL): refuse an automatic failover when the best candidate's received
	// WAL is further than this behind the last known primary position. Default 16MiB; 0 = no bound.
	MaxDataLoss ByteSize `yaml:"max_data_loss"`
	// MaxLostTransactions (MySQL/MariaDB): the same bound in transactions, by GTID sequence
	// numbers. Default 0 = no bound.
	MaxLostTransactions int `yaml:"max_lost_transactions"`
	// User is the account that fences, promotes and re-points nodes (PostgreSQL superuser;
	// MySQL/MariaDB SUPER or the equivalent privileges). Default: monitor_user.
	User string `yaml:"user"`
	// ReplicationUser / ReplicationPassword[Env]: the account a MySQL/MariaDB replica uses to
	// connect to its primary when baton attaches it (rejoin, switchover). PostgreSQL replicas keep
	// their own primary_conninfo credentials.
	ReplicationUser        string `yaml:"replication_user"`
	ReplicationPassword    Secret `yaml:"replication_password"`
	ReplicationPasswordEnv string `yaml:"replication_password_env"`
	// ApplyTimeout bounds waiting for the candidate to apply what it has received. Default 30s.
	ApplyTimeout Duration `yaml:"apply_timeout"`
	// StepTimeout bounds each SQL step (fence, promote, re-point). Default 10s.
	StepTimeout Duration `yaml:"step_timeout"`
	// DrainTimeout: in a switchover, how long running write transactions may take to finish
	// before they are cancelled. Default 5s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// ReplicaConnectRetry: the MASTER_CONNECT_RETRY (MySQL: SOURCE_CONNECT_RETRY) baton sets when
	// it points a MySQL/MariaDB replica at a primary: how long the replica waits before it
	// reconnects after losing its primary (a restart, a network blip). The server's default, 60 s,
	// leaves a replica behind for a minute after every primary restart. Whole seconds; default 1s.
	ReplicaConnectRetry Duration `yaml:"replica_connect_retry"`
	// maxDataLossSet records that the file names max_data_loss (an explicit 0 = no bound).
	maxDataLossSet bool
}

// AutoEnabled reports whether automatic failover is on.
func (f *Failover) AutoEnabled() bool { return f.Auto == nil || *f.Auto }

// Buffer bounds the failover buffer: statements that need the primary while it changes are held
// and released to the new primary (DESIGN §3).
type Buffer struct {
	// Window: how long one statement may wait. Default 10s.
	Window Duration `yaml:"window"`
	// MaxRequests: statements held at once; more get an error at once. Default 1000.
	MaxRequests int `yaml:"max_requests"`
	// MaxDuration: a primary change that takes longer than this fails every held statement.
	// Default 30s.
	MaxDuration Duration `yaml:"max_duration"`
}

// Node is one database server of a cluster.
type Node struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	// Weight is the node's share of reads among routable replicas (default 1; 0 = no reads).
	Weight *int `yaml:"weight"`
	// Drain: no new sessions or statements are routed to the node; running ones finish.
	Drain bool `yaml:"drain"`
	// NoPromote: never chosen as a failover candidate.
	NoPromote bool `yaml:"no_promote"`
	Priority  int  `yaml:"priority"`
	// BackendTLS overrides the cluster's backend_tls fields it sets, for this node.
	BackendTLS *BackendTLS `yaml:"backend_tls"`

	tls *NodeTLS // resolved by Cluster.ResolveBackendTLS (Load); see TLS
}

// ReadWeight is the node's effective read weight.
func (n *Node) ReadWeight() int {
	if n.Weight == nil {
		return 1
	}
	return *n.Weight
}

// User is a client account baton authenticates, and the backend credentials it uses for it.
type User struct {
	Name         string `yaml:"name"`
	Password     Secret `yaml:"password"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// Auth is the client authentication method: scram-sha-256 (default), md5, trust (PostgreSQL);
	// mysql_native_password or caching_sha2_password (MySQL).
	Auth string `yaml:"auth"`
	// BackendUser / BackendPassword: the credentials for backend connections; default to the
	// client's own.
	BackendUser        string `yaml:"backend_user"`
	BackendPassword    Secret `yaml:"backend_password"`
	BackendPasswordEnv string `yaml:"backend_password_env"`
	// PoolMode overrides the cluster's pool_mode for this user ("" = the cluster's).
	PoolMode PoolMode `yaml:"pool_mode"`
	// MaxClientConnections caps this user's client sessions (0: limits.max_user_connections).
	MaxClientConnections int `yaml:"max_client_connections"`
	// PoolSize caps the backend connections of this user's sessions per node and database, in
	// place of pool.size (0: pool.size), like PgBouncer's per-user pool_size. Users sharing a
	// backend_user share its pools: the smallest size given among them applies.
	PoolSize int `yaml:"pool_size"`
}

// Pool bounds the per-node backend connection pools.
type Pool struct {
	// Size caps the backend connections of one (node, user, database): a session that finds
	// them all busy queues for one (first come, first served) for up to AcquireTimeout, like
	// PgBouncer's default_pool_size. Default 20 with pool_mode transaction; with pool_mode
	// session MaxPerNode (a session keeps its connection while it lasts, so a bound per user
	// would bound that user's clients).
	Size int `yaml:"size"`
	// MaxPerNode caps backend connections to one node (for all users and databases together,
	// reserve included): idle connections of other keys are closed to make room. Default 100.
	MaxPerNode int `yaml:"max_per_node"`
	// ReserveSize: a session that has queued for ReserveTimeout may open up to this many
	// connections above Size (PgBouncer's reserve_pool_size); they close again when a session
	// returns one and nobody is queued. Default 5; 0 = no reserve.
	ReserveSize int `yaml:"reserve_size"`
	// ReserveTimeout is how long a session queues before it may use the reserve (PgBouncer's
	// reserve_pool_timeout). Default 3s.
	ReserveTimeout Duration `yaml:"reserve_timeout"`
	// reserveSizeSet records that the file names reserve_size (an explicit 0 = no reserve).
	reserveSizeSet bool
	// MinIdle keeps this many warm connections per node and user. Default 0.
	MinIdle int `yaml:"min_idle"`
	// AcquireTimeout bounds how long a session waits for a free backend connection. Default 10s.
	AcquireTimeout Duration `yaml:"acquire_timeout"`
	// ConnectTimeout bounds dialing and authenticating to a backend. Default 5s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// IdleTimeout closes pooled connections unused this long. Default 5m.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ServerLifetime closes a pooled connection older than this when it is checked in or out
	// (never while a session uses it), so new sessions get connections that reflect changed
	// server globals (like PgBouncer's server_lifetime). Default 1h; 0 = unlimited.
	ServerLifetime Duration `yaml:"server_lifetime"`
	// serverLifetimeSet records that the file names server_lifetime (an explicit 0 = unlimited).
	serverLifetimeSet bool
	// MaxPreparedStatements bounds the statements baton keeps prepared on one backend connection
	// in transaction pooling (shared across sessions, least recently used closed first).
	// Default 200.
	MaxPreparedStatements int `yaml:"max_prepared_statements"`
	// ResetQuery runs when a session gives a connection back. Default "DISCARD ALL" (PostgreSQL).
	ResetQuery string `yaml:"reset_query"`
}

// Limits are the client-facing limits of a listener.
type Limits struct {
	// MaxClients caps concurrent client connections. Default 10000.
	MaxClients int `yaml:"max_clients"`
	// MaxMessageSize caps one protocol message from a client. Default 64MiB.
	MaxMessageSize ByteSize `yaml:"max_message_size"`
	// StartupTimeout bounds TLS + startup + authentication. Default 10s.
	StartupTimeout Duration `yaml:"startup_timeout"`
	// ClientIdleTimeout closes a client idle outside a transaction this long. Default 0 (never).
	ClientIdleTimeout Duration `yaml:"client_idle_timeout"`
	// IdleInTransactionTimeout closes a client idle inside a transaction this long. Default 0.
	IdleInTransactionTimeout Duration `yaml:"idle_in_transaction_timeout"`
	// ShutdownTimeout: on SIGTERM, how long running transactions may take to finish. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// StatementCacheSize bounds the classifier's cache of statement texts. Default 10000.
	StatementCacheSize int `yaml:"statement_cache_size"`
	// MaxPipelineBytes: extended-protocol messages buffered before their Sync to choose a node;
	// beyond it the group is sent to the primary as it arrives. Default 1MiB.
	MaxPipelineBytes ByteSize `yaml:"max_pipeline_bytes"`
	// MaxSessionState caps the SET/RESET statements a session keeps to replay on other nodes;
	// beyond it the session stays on the primary. Default 1000.
	MaxSessionState int `yaml:"max_session_state"`
	// ParkIdleAfter: a client idle (outside a transaction, nothing outstanding) this long
	// gives its goroutine and read buffer back until it sends again, so that an idle client
	// costs a few KiB; the first message after that costs a goroutine start. Default 1s; 0 =
	// never park. (Not with client_idle_timeout, which needs the waiting read's deadline.)
	ParkIdleAfter Duration `yaml:"park_idle_after"`
	// parkIdleAfterSet records that the file names park_idle_after (an explicit 0 = never).
	parkIdleAfterSet bool
	// MaxNotifyQueue (PostgreSQL, transaction pooling) bounds the notifications held for one
	// client that has not read them yet; beyond it the session ends with FATAL 53200.
	// Default 8MiB.
	MaxNotifyQueue ByteSize `yaml:"max_notify_queue"`
	// MaxUserConnections caps the client sessions of one user (users[].max_client_connections
	// overrides it), MaxDBConnections (PostgreSQL) those of one database; more are refused with
	// the server's error. Default 0 = no limit (userlimits.go).
	MaxUserConnections int `yaml:"max_user_connections"`
	MaxDBConnections   int `yaml:"max_db_connections"`
	// LoginBackoff caps the wait of a login from a client address with many recent failed
	// logins (default 2s; 0 = off).
	LoginBackoff *Duration `yaml:"login_backoff"`
}

// Parking reports whether idle clients park (park_idle_after set, and no client_idle_timeout,
// which needs the waiting read's deadline).
func (l *Limits) Parking() bool { return l.ParkIdleAfter > 0 && l.ClientIdleTimeout <= 0 }

// TLS configures TLS termination for clients. Both files set ⇒ TLS offered.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Require refuses clients that do not upgrade to TLS.
	Require bool `yaml:"require"`
}

// Enabled reports whether TLS termination is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// Secret is a string that never prints.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret in %#v.
func (s Secret) GoString() string { return s.String() }

// Reveal returns the secret itself; call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// Duration is a time.Duration written as "500ms", "10s", "5m" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 500ms, 10s, 5m)", string(b))
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", string(b))
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML decodes a YAML scalar with UnmarshalText; an error names the field and line.
func (d *Duration) UnmarshalYAML(n ast.Node) error { return unmarshalScalar(n, d) }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a byte count written as 1048576, "64KiB", "16MiB", "1GiB" (or KB/MB/GB = 1000^n).
type ByteSize int64

// UnmarshalText parses a byte size.
func (b *ByteSize) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q (use e.g. 65536, 64KiB, 16MiB)", string(t))
	}
	*b = ByteSize(n * mult)
	return nil
}

// UnmarshalYAML decodes a YAML scalar with UnmarshalText; an error names the field and line.
func (b *ByteSize) UnmarshalYAML(n ast.Node) error { return unmarshalScalar(n, b) }

// unmarshalScalar decodes YAML scalar n into v. The YAML decoder passes a plain UnmarshalText
// error on without its position, so the error is located here: field path and line.
func unmarshalScalar(n ast.Node, v encoding.TextUnmarshaler) error {
	tk := n.GetToken()
	var err error
	if _, ok := n.(ast.ScalarNode); !ok || tk == nil {
		err = fmt.Errorf("want a single value, not %s", n.Type())
	} else {
		err = v.UnmarshalText([]byte(tk.Value))
	}
	if err == nil {
		return nil
	}
	fe := &fieldError{path: n.GetPath(), msg: err.Error()}
	if tk != nil && tk.Position != nil {
		fe.line = tk.Position.Line
	}
	return fe
}

// Defaults applied by Load.
const (
	DefaultMaxClients          = 10000
	DefaultMaxMessageSize      = 64 << 20
	DefaultStartupTimeout      = 10 * time.Second
	DefaultShutdownTimeout     = 30 * time.Second
	DefaultMaxPerNode          = 100
	DefaultPoolSize            = 20
	DefaultReserveSize         = 5
	DefaultReserveTimeout      = 3 * time.Second
	DefaultAcquireTimeout      = 10 * time.Second
	DefaultConnectTimeout      = 5 * time.Second
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultServerLifetime      = time.Hour
	DefaultProbeInterval       = 500 * time.Millisecond
	DefaultProbeTimeout        = time.Second
	DefaultStmtCacheSize       = 10000
	DefaultMaxPipelineBytes    = 1 << 20
	DefaultMaxSessionState     = 1000
	DefaultMaxNotifyQueue      = 8 << 20
	DefaultParkIdleAfter       = time.Second
	DefaultMaxLag              = 10 * time.Second
	DefaultMaxLagBytes         = 16 << 20
	DefaultRYWWait             = time.Second
	DefaultFailureThreshold    = 2
	DefaultGrace               = 300 * time.Millisecond
	DefaultConfirmProbes       = 3
	DefaultConfirmInterval     = 30 * time.Millisecond
	DefaultMinInterval         = 5 * time.Minute
	DefaultMaxDataLoss         = 16 << 20
	DefaultApplyTimeout        = 30 * time.Second
	DefaultStepTimeout         = 10 * time.Second
	DefaultDrainTimeout        = 5 * time.Second
	DefaultReplicaConnectRetry = time.Second
	DefaultBufferWindow        = 10 * time.Second
	DefaultBufferMax           = 1000
	DefaultBufferDuration      = 30 * time.Second
)

func (c *Cluster) applyDefaults() {
	orDefault(&c.Consistency, ReadYourWrites)
	orDefault(&c.PoolMode, PoolTransaction) // backends are shared between sessions, both engines
	orDefault(&c.ProbeInterval, Duration(DefaultProbeInterval))
	orDefault(&c.ProbeTimeout, Duration(DefaultProbeTimeout))
	if c.MaxLag == 0 && !c.maxLagSet {
		c.MaxLag = Duration(DefaultMaxLag)
	}
	if c.MaxLagBytes == 0 && !c.maxLagBytesSet && c.Engine != EngineMySQL {
		c.MaxLagBytes = DefaultMaxLagBytes
	}
	if c.ReadYourWritesWait == 0 && !c.rywWaitSet {
		c.ReadYourWritesWait = Duration(DefaultRYWWait)
	}
	orDefault(&c.FailureThreshold, DefaultFailureThreshold)
	orDefault(&c.ConfirmProbes, DefaultConfirmProbes)
	orDefault(&c.ConfirmInterval, Duration(DefaultConfirmInterval))
	f := &c.Failover
	orDefault(&f.Grace, Duration(DefaultGrace))
	orDefault(&f.MinInterval, Duration(DefaultMinInterval))
	if f.MaxDataLoss == 0 && !f.maxDataLossSet {
		f.MaxDataLoss = DefaultMaxDataLoss
	}
	orDefault(&f.ApplyTimeout, Duration(DefaultApplyTimeout))
	orDefault(&f.StepTimeout, Duration(DefaultStepTimeout))
	orDefault(&f.DrainTimeout, Duration(DefaultDrainTimeout))
	orDefault(&f.ReplicaConnectRetry, Duration(DefaultReplicaConnectRetry))
	if f.User == "" && len(c.Users) > 0 {
		f.User = c.MonitorCredentials().Name
	}
	b := &c.Buffer
	orDefault(&b.Window, Duration(DefaultBufferWindow))
	orDefault(&b.MaxRequests, DefaultBufferMax)
	orDefault(&b.MaxDuration, Duration(DefaultBufferDuration))
	p := &c.Pool
	orDefault(&p.MaxPerNode, DefaultMaxPerNode)
	if c.PoolMode == PoolSession {
		orDefault(&p.Size, p.MaxPerNode)
	}
	orDefault(&p.Size, DefaultPoolSize)
	if p.ReserveSize == 0 && !p.reserveSizeSet {
		p.ReserveSize = DefaultReserveSize
	}
	orDefault(&p.ReserveTimeout, Duration(DefaultReserveTimeout))
	orDefault(&p.AcquireTimeout, Duration(DefaultAcquireTimeout))
	orDefault(&p.MaxPreparedStatements, 200)
	orDefault(&p.ConnectTimeout, Duration(DefaultConnectTimeout))
	orDefault(&p.IdleTimeout, Duration(DefaultIdleTimeout))
	if p.ServerLifetime == 0 && !p.serverLifetimeSet {
		p.ServerLifetime = Duration(DefaultServerLifetime)
	}
	if p.ResetQuery == "" && c.Engine == EnginePostgres {
		p.ResetQuery = "DISCARD ALL"
	}
	l := &c.Limits
	orDefault(&l.MaxClients, DefaultMaxClients)
	orDefault(&l.MaxMessageSize, DefaultMaxMessageSize)
	orDefault(&l.StartupTimeout, Duration(DefaultStartupTimeout))
	orDefault(&l.ShutdownTimeout, Duration(DefaultShutdownTimeout))
	orDefault(&l.StatementCacheSize, DefaultStmtCacheSize)
	orDefault(&l.MaxPipelineBytes, DefaultMaxPipelineBytes)
	orDefault(&l.MaxSessionState, DefaultMaxSessionState)
	orDefault(&l.MaxNotifyQueue, DefaultMaxNotifyQueue)
	if l.ParkIdleAfter == 0 && !l.parkIdleAfterSet {
		l.ParkIdleAfter = Duration(DefaultParkIdleAfter)
	}
	for _, u := range c.Users {
		if u.Auth == "" {
			if c.Engine == EngineMySQL {
				u.Auth = "caching_sha2_password"
			} else {
				u.Auth = "scram-sha-256"
			}
		}
		orDefault(&u.BackendUser, u.Name)
	}
}

// orDefault sets *v to def when it is the zero value (the file left the field out).
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// fieldError is a validation error at a YAML path such as $.clusters[0].nodes[1].address.
type fieldError struct {
	path string
	msg  string
	line int // 0: look the path up in the file
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func ferr(path, format string, args ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}

// resolveSecrets reads password_env / password_file references.
func (u *User) resolveSecrets(path string) error {
	n := 0
	for _, set := range []bool{u.Password != "", u.PasswordEnv != "", u.PasswordFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return ferr(path+".password", "set only one of password, password_env, password_file")
	}
	switch {
	case u.PasswordEnv != "":
		v, ok := os.LookupEnv(u.PasswordEnv)
		if !ok {
			return ferr(path+".password_env", "environment variable %s is not set", u.PasswordEnv)
		}
		u.Password = Secret(v)
	case u.PasswordFile != "":
		b, err := os.ReadFile(u.PasswordFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return ferr(path+".password_file", "cannot read %s: %v", u.PasswordFile, err)
		}
		u.Password = Secret(strings.TrimRight(string(b), "\r\n"))
	}
	if u.BackendPasswordEnv != "" {
		v, ok := os.LookupEnv(u.BackendPasswordEnv)
		if !ok {
			return ferr(path+".backend_password_env", "environment variable %s is not set", u.BackendPasswordEnv)
		}
		u.BackendPassword = Secret(v)
	}
	if u.BackendPassword == "" {
		u.BackendPassword = u.Password
	}
	return nil
}

func validAddress(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("address %q has an invalid port", a)
	}
	return nil
}
