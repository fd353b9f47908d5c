package failover

import (
	"context"
	"errors"

	"github.com/baton-proxy/baton/topology"
)

// ErrUnsupported is returned by an Engine step the engine cannot do online (for example
// re-attaching an old PostgreSQL primary, which needs pg_rewind and a restart).
var ErrUnsupported = errors.New("failover: not supported for this engine")

// NodeInfo is what the coordinator reads from one node, fresh, when it decides a failover or a
// switchover. Positions are in the engine's own text form: a pg_lsn ("0/3000060") for
// PostgreSQL, a GTID list ("0-1-42,1-2-7") for MariaDB, a GTID set for MySQL.
type NodeInfo struct {
	// InRecovery: the node is a replica (PostgreSQL pg_is_in_recovery(); MySQL/MariaDB: it has a
	// replication source configured or @@read_only is on).
	InRecovery bool
	// Writable: the node accepts writes now (PostgreSQL: not in recovery and
	// default_transaction_read_only off; MySQL/MariaDB: @@read_only off).
	Writable bool
	// Received is the newest position the node has received (PostgreSQL
	// pg_last_wal_receive_lsn(), else the replay LSN; MariaDB Gtid_IO_Pos merged with
	// gtid_current_pos; on a primary its current position).
	Received string
	// Applied is the position the node has applied (PostgreSQL replay LSN, or
	// pg_current_wal_lsn() on a primary; MariaDB @@gtid_current_pos).
	Applied string
	// Timeline is the PostgreSQL timeline the node is on (0 for MySQL/MariaDB).
	Timeline uint32
	// Source is the host:port the replica follows ("" for a primary or when unknown).
	Source string
}

// Engine performs the per-engine steps of DESIGN §3 on real servers. Each method opens (or
// reuses) an administrative connection to the node as the cluster's failover.user, honours
// ctx's deadline, and returns an error that names the node and the step. Implementations are
// safe for concurrent use on different nodes.
type Engine interface {
	// Inspect reads a node's role and positions.
	Inspect(ctx context.Context, n *topology.Node) (NodeInfo, error)
	// Fence makes a node refuse writes and ends its client connections (DESIGN §3 step 3).
	// It is idempotent.
	Fence(ctx context.Context, n *topology.Node) error
	// Unfence undoes Fence on a node that is primary again (PostgreSQL: ALTER SYSTEM RESET
	// default_transaction_read_only; MySQL/MariaDB: read_only OFF).
	Unfence(ctx context.Context, n *topology.Node) error
	// WaitApplied waits until a replica has applied everything it has received (and, when pos
	// is not "", at least pos), or ctx ends.
	WaitApplied(ctx context.Context, n *topology.Node, pos string) error
	// Promote turns a replica into a writable primary and returns once it accepts writes.
	Promote(ctx context.Context, n *topology.Node) error
	// Repoint makes a replica follow primary (DESIGN §3 step 6).
	Repoint(ctx context.Context, replica, primary *topology.Node) error
	// Rejoin attaches a fenced old primary to primary as a replica, online. ErrUnsupported for
	// PostgreSQL.
	Rejoin(ctx context.Context, old, primary *topology.Node) error
	// Compare orders two positions of this engine: -1, 0, +1; ok is false when they cannot be
	// compared (different timelines or GTID domains that neither covers).
	Compare(a, b string) (c int, ok bool)
	// Distance is how far behind b is from a: bytes for PostgreSQL, transactions (GTID
	// sequence numbers) for MariaDB; -1 when unknown.
	Distance(a, b string) int64
	// Close releases the engine's connections.
	Close()
}
