// Package failovertest proves automatic failover, planned switchover and the failover buffer
// against real PostgreSQL and MariaDB clusters with baton (in-process, embedded etcd) in front:
// a write load through baton records every acknowledged write, the primary is killed or switched
// over, and the tests check the invariants of DESIGN §3 — one new primary, writes resume through
// baton, the old primary is fenced and receives no writes, and (synchronous setups) no
// acknowledged write is lost.
package failovertest
