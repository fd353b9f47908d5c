// Package cluster starts real PostgreSQL clusters on loopback for baton's
// integration tests, benchmarks and `baton demo`.
//
// A cluster is one primary and N streaming hot-standby replicas (default 2),
// each a postmaster process owned by the calling Go process:
//
//   - the primary is created with initdb; host connections from 127.0.0.1,
//     including replication connections, authenticate with scram-sha-256;
//   - a LOGIN role (default "app") owning a database (default "app") is
//     created next to the superuser "postgres";
//   - each replica is cloned with pg_basebackup -R -X stream -c fast, so its
//     primary_conninfo carries the superuser password, and its cluster_name
//     (which is also the walreceiver's application_name) is the node name;
//   - StartPG returns once every replica shows up as 'streaming' in the
//     primary's pg_stat_replication and accepts connections.
//
// Every node listens on 127.0.0.1 only, on a free TCP port, and puts its
// unix socket in <BaseDir>/sockets, private to the server user (not in the
// data directory: pg_rewind would try to copy it). Server logs go to
// <BaseDir>/<node>.log. Postmasters are started directly (not through
// pg_ctl): [PGNode.Kill] is a real SIGKILL of the postmaster, [PGNode.Stop] a
// fast shutdown (SIGINT). On Linux the postmaster gets Pdeathsig=SIGKILL, so
// a crashing test binary leaves no server behind.
//
// PostgreSQL refuses to run as root. When the caller is root, initdb,
// pg_basebackup and the postmasters run as the "postgres" system user, and
// the base directory and all data directories are owned by it. As an
// ordinary user everything runs as that user. Running as root is supported
// on Linux only.
//
// The binaries are taken from $BATON_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin, else the directory of `postgres` on $PATH.
//
// Typical test:
//
//	func TestReadsGoToReplicas(t *testing.T) {
//		c := cluster.StartPGForTest(t, cluster.PGOptions{})
//		conn, err := pgx.Connect(t.Context(), c.Primary.AppURL())
//		...
//		for _, r := range c.Replicas {
//			_ = r.AppURL() // read-only, pg_is_in_recovery() is true
//		}
//	}
//
// Lifecycle notes:
//
//   - Ports come from PGOptions.Ports when free, else from the kernel; if
//     another process grabs a port before the postmaster binds it, StartPG
//     moves that node to a new port. A restarted node keeps its port.
//   - [PGNode.Kill] returns only after the killed postmaster's backends have
//     exited too, so [PGNode.Start] may follow at once (PostgreSQL refuses to
//     start while old backends still hold its shared memory).
//   - Readiness is polled every 50 ms: first the status line of
//     postmaster.pid ("ready" or "standby", as pg_ctl -w does), then a
//     superuser connection; no fixed sleeps.
//   - Replicas retry the primary every 500 ms, so after the primary is
//     restarted they resume streaming within about a second.
//
// Integration tests never skip when PostgreSQL is missing: [RequirePG] fails
// the test and says how to install it.
package cluster
