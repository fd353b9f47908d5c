// Package failover replaces a dead primary and runs planned switchovers (DESIGN §3).
//
// A Manager runs in every baton instance for every cluster. It campaigns for the cluster's
// coordinator role (an etcd election); while it holds it, it publishes the cluster's state
// (epoch, primary, phase) with writes fenced by its election key, decides that the primary is
// dead when every instance's observation of it is gone for failover.grace and its own probe
// fails, and then fails over: failing_over with a new epoch, wait for every live instance to
// acknowledge, fence the old primary, choose the candidate, let it apply, promote, publish
// stable, re-point the other replicas. It also runs switchovers, answers operators' requests
// (failover, switchover, rejoin) and fences any other node that takes writes. It counts only
// the acknowledgements of instances that serve the cluster (members), refuses an automatic
// failover while the cluster is paused (`baton pause`), and reports an old primary that holds
// changes the new primary lacks as diverged (diverge.go), refusing to rejoin it.
//
// Engine holds the per-engine SQL steps: NewPG for PostgreSQL, NewMy for MariaDB and MySQL.
// Instances that are not the coordinator follow the state in package proxy.
package failover
