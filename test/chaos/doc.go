// Package chaos holds baton's chaos tests (DESIGN §3): two baton instances, real subprocesses
// built from ./cmd/baton, share a three-member etcd cluster and proxy a write and read load to a
// real PostgreSQL or MariaDB cluster while the tests kill, hang or isolate its parts — the
// primary (kill -9, SIGSTOP), the coordinating baton instance in the middle of a failover, etcd
// members up to the loss of the quorum, a replica — or run a planned switchover. The client
// records every acknowledged write; the tests check at the end that exactly one new primary took
// over, no acknowledged write is lost (synchronous replication), no two nodes were ever routed
// writes for the same epoch, a fenced node receives nothing, and that the load saw no error where
// the design promises none.
//
// `make chaos` sets BATON_CHAOS_RUNS=10: the kill -9 tests then repeat the failover on a fresh
// cluster each run and print the time from the kill to the first acknowledged write sent after
// it (p50 and max per engine). In `make test` every test runs once.
package chaos
