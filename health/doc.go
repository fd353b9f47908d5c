// Package health probes database nodes and publishes what it sees as topology snapshots.
//
// A Checker owns one monitoring connection per node and probes every node each interval, all
// nodes at once. A probe reads the node's role and replication state: PostgreSQL in one query
// (pg_is_in_recovery(), the current or replay LSN, the replay timestamp, pg_stat_wal_receiver,
// and on the primary its synchronous standbys); MySQL/MariaDB from @@read_only, the GTID position
// and SHOW SLAVE STATUS. From one round's answers Build makes a topology.Snapshot: the node that
// is up and not in recovery is the primary; a replica is readable when it is up, in recovery,
// not drained, has a read weight, streams from the primary, and is within the cluster's max_lag
// and max_lag_bytes. Lag is 0 when the replica has reached the primary's position of the same
// round, else the replica's own estimate (PostgreSQL: now − last replayed commit, both read on
// the replica; MySQL/MariaDB: Seconds_Behind_Master), lowered to the age of the newest earlier
// primary probe (Snapshot.PrimaryHistory) whose position the replica has reached. A replica
// that breaks a rule leaves the read set at that probe; it rejoins by itself at the first probe
// that keeps them all.
//
// The monitor user needs pg_monitor (PostgreSQL) or SLAVE MONITOR / REPLICATION CLIENT
// (MariaDB / MySQL) to see replication status and each replica's source. Without it the checker
// logs a warning once per node and judges replicas by what it can see: the WAL receiver process
// and LSNs (PostgreSQL), Slave_running and GTID positions (MariaDB); a MySQL replica then serves
// no reads.
//
// The checker also decides whether this instance still observes each node (the etcd observer
// key, DESIGN §3; suspect.go), from two kinds of evidence (Classify). Gone — a refused connect,
// a reset, an EOF, the server shutting down — from a probe, or from a client statement through
// Suspect, starts confirm_probes probes on new connections, confirm_interval apart; when all
// say Gone the observation is withdrawn at once and a snapshot with the node down is published.
// A Timeout (hung host, dropped packets, or a busy server) is weaker: the observation goes after
// failure_threshold consecutive failed rounds. A stable state naming a new primary makes it the
// snapshot's primary at once (SetState), until the next probe confirms or contradicts it.
//
// Engine specifics live behind the Prober interface (postgres.go, mysql.go); the generic loop is
// in checker.go and the replication rules in lag.go.
package health
