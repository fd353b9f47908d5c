// Package failover will hold the coordinator election, the dead-primary decision, candidate
// choice, promote / re-point / fence per engine and planned switchover (DESIGN §3).
//
// Until it lands, baton follows the primary it observes: health probes find the node that is
// not in recovery, and the proxy routes writes there; a cluster with no (or two) writable nodes
// gets no writes rather than split writes.
package failover
