// Package health probes database nodes and publishes what it sees as topology snapshots.
//
// A Checker owns one monitoring connection per node and probes every node each interval
// (PostgreSQL: pg_is_in_recovery()). From the answers it builds a topology.Snapshot: the node
// that is up and not in recovery is the primary; replicas that are up, in recovery, not drained
// and have a read weight are readable. A node that cannot be reached leaves the snapshot's read
// set at the next probe; it rejoins by itself when it answers again.
//
// Engine specifics live behind the Prober interface (postgres.go); the generic loop is here.
package health
