// Package topology holds baton's configuration model and the live view of each cluster.
//
// A configuration is one YAML file (see configs/ for runnable examples). Load reads, decodes and
// validates it; every error names the file, the line and the field, e.g.
//
//	configs/postgres.yaml:12: clusters[0].nodes[1].address: missing port in address "127.0.0.1"
//
// Secrets (user passwords) come from the file, an environment variable (password_env) or a file
// (password_file). They are resolved once at load time and never appear in String output, logs or
// error text.
//
// The live topology of a cluster (which node is the primary, which replicas may serve reads) is an
// immutable Snapshot published through an atomic pointer: readers call Load once per routing
// decision, take no lock and do no I/O; writers build a new Snapshot and Store it.
//
// Shared state among baton instances lives in etcd (DESIGN §3): StartEmbeddedEtcd runs a
// single-member server inside baton when no endpoints are configured; a Store is one instance's
// session (its lease ties its instance and observer keys to its liveness), Campaign elects the
// cluster's coordinator, and Coordinator.WriteState is fenced by the election key so a deposed
// coordinator cannot write.
package topology
