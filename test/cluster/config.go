package cluster

import (
	"fmt"
	"strings"
)

// PGOptions configures StartPG. The zero value starts a primary and two
// replicas in a fresh temporary directory.
type PGOptions struct {
	// Replicas is the number of streaming replicas; 0 means 2. Use a
	// negative value for a primary alone.
	Replicas int
	// BaseDir holds one data directory and one log file per node. Empty
	// means a new os.MkdirTemp directory, removed by Stop; a given BaseDir
	// is created if needed and kept.
	BaseDir string
	// Ports are the preferred ports: [primary, replica1, ...]. A missing,
	// zero or busy entry gets a free port.
	Ports []int
	// Password is the password of the superuser "postgres"; default "postgres".
	Password string
	// AppUser, AppPassword and AppDB name a LOGIN role, not a superuser,
	// that owns database AppDB; defaults "app", "app", "app".
	AppUser, AppPassword, AppDB string
	// AppMonitor grants AppUser pg_monitor, what baton's monitor user needs
	// to read the replicas' WAL receiver status (as the README recommends).
	AppMonitor bool
	// Settings are extra postgresql.conf lines appended on every node, such
	// as "synchronous_standby_names = '*'".
	Settings []string
	// Fast trades durability for speed (fsync, synchronous_commit and
	// full_page_writes off): for tests. pg_rewind needs full_page_writes:
	// add "full_page_writes = on" to Settings to use PGCluster.Rejoin.
	Fast bool
	// SyncStandbys, if set, becomes the primary's synchronous_standby_names
	// once every replica streams, such as "ANY 1 (replica1, replica2)".
	// Replicas are named by their node names ("replica1", ...), which are
	// their cluster_name and so their WAL receivers' application_name.
	SyncStandbys string
	// Logf, if set, receives progress messages, possibly from several
	// goroutines at once.
	Logf func(format string, args ...any)
	// Lab, if set, runs every node in a network namespace of its own in
	// Lab (partition tests, root only): a node listens on all its lane
	// addresses (PGNode.Host is its lane 0 address, LaneAddr the others)
	// and replicates over lane 0.
	Lab *NetLab
	// NoTLS starts every node without TLS; NoTLSNodes only the nodes named ("primary",
	// "replica1", …). The others run ssl = on with the certificates of PGCluster.TLS (the
	// server's for 127.0.0.1 and localhost, ssl_ca_file the cluster's CA, so client
	// certificates it signed are accepted).
	NoTLS      bool
	NoTLSNodes []string
	// HBA lines come first in pg_hba.conf (the first match wins), such as
	// "hostssl all app 127.0.0.1/32 cert".
	HBA []string
}

// withDefaults fills in the documented defaults.
func (o PGOptions) withDefaults() PGOptions {
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.Replicas < 0 {
		o.Replicas = 0
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Password, "postgres")
	def(&o.AppUser, "app")
	def(&o.AppPassword, "app")
	def(&o.AppDB, "app")
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	o.Ports = append([]int(nil), o.Ports...)
	o.Settings = append([]string(nil), o.Settings...)
	o.NoTLSNodes = append([]string(nil), o.NoTLSNodes...)
	o.HBA = append([]string(nil), o.HBA...)
	return o
}

// nodeConfFile is included at the end of postgresql.conf and holds what
// differs between nodes. pg_basebackup copies it; each replica rewrites it.
const nodeConfFile = "baton_node.conf"

// commonConf is appended to the postgresql.conf written by initdb, which
// replicas inherit through pg_basebackup.
func commonConf(o PGOptions) string {
	var b strings.Builder
	b.WriteString("\n# --- added by baton test/cluster ---\n")
	for _, l := range []string{
		listenAddresses(o),
		"wal_level = replica",
		"max_wal_senders = 10",
		"max_replication_slots = 10",
		"hot_standby = on",
		"hot_standby_feedback = on",
		"wal_keep_size = '256MB'",
		"max_connections = 300",
		"shared_buffers = '32MB'",
		"logging_collector = off",
		"password_encryption = 'scram-sha-256'",
		"wal_receiver_status_interval = '1s'",
		"wal_retrieve_retry_interval = '500ms'",
		"wal_log_hints = on", // pg_rewind (PGCluster.Rejoin) needs it or data checksums
	} {
		b.WriteString(l + "\n")
	}
	if o.Fast {
		b.WriteString("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
		// With asynchronous commit a commit reaches the replicas only when the WAL writer
		// flushes it, and an idle WAL writer sleeps up to 25 × wal_writer_delay: keep that
		// short, so that replicas trail the primary by milliseconds as they do with
		// synchronous commit (read_your_writes waits on them, bounded by one second).
		b.WriteString("wal_writer_delay = 10ms\n")
	}
	for _, l := range o.Settings {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "include '%s'\n", nodeConfFile)
	return b.String()
}

// nodeConf is the per-node part of the configuration.
func nodeConf(n *PGNode) string {
	s := fmt.Sprintf("# written by baton test/cluster for node %s\n"+
		"port = %d\nunix_socket_directories = %s\ncluster_name = %s\n",
		n.Name, n.Port, confQuote(n.c.socketDir()), confQuote(n.Name))
	if t := n.c.TLS; n.TLS && t != nil {
		s += fmt.Sprintf("ssl = on\nssl_cert_file = %s\nssl_key_file = %s\nssl_ca_file = %s\n",
			confQuote(t.ServerCert), confQuote(t.ServerKey), confQuote(t.CAFile))
	}
	return s
}

// listenAddresses is 127.0.0.1, or every address of the node's namespace.
func listenAddresses(o PGOptions) string {
	if o.Lab != nil {
		return "listen_addresses = '*'"
	}
	return "listen_addresses = '127.0.0.1'"
}

// hbaNetns lets the lanes of a NetLab in (appended to hbaConf when the
// nodes run in namespaces).
const hbaNetns = `host    all          all   10.0.0.0/8     scram-sha-256
host    replication  all   10.0.0.0/8     scram-sha-256
`

// hbaConf trusts the unix socket, which lives in the owner-only data
// directory, and wants SCRAM passwords on 127.0.0.1, replication included.
const hbaConf = `# written by baton test/cluster
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
`

// confQuote quotes a postgresql.conf string value.
func confQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

// connQuote quotes a libpq key=value connection string value.
func connQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// sqlLiteral quotes a SQL string literal (standard_conforming_strings on).
func sqlLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// sqlIdent quotes a SQL identifier.
func sqlIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
