// Package buffer holds statements that need a primary while the cluster has none — during a
// failover or a planned switchover, or while the instance cannot renew its etcd lease — and
// releases them to the new primary (DESIGN §3), in the manner of vtgate's buffer: bounded per
// statement (window), in count (max_requests) and in total outage length (max_duration).
//
// Only statements that have not been sent to any backend are held. A statement that was in
// flight when the primary died gets an error: an interrupted COMMIT is never replayed.
package buffer
