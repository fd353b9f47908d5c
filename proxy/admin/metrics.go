package admin

import (
	"context"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/proxy/pool"
	"github.com/baton-proxy/baton/topology"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric descriptors. Every series carries the cluster label; node series also carry node.
var (
	descNodeUp = prometheus.NewDesc("baton_node_up",
		"1 when the node's last health probe succeeded, else 0.", []string{"cluster", "node"}, nil)
	descNodeRole = prometheus.NewDesc("baton_node_role",
		"The node's role as last observed: 1 for its current role, 0 for the others.", []string{"cluster", "node", "role"}, nil)
	descBackendConns = prometheus.NewDesc("baton_backend_connections",
		"Backend connections in the node's pool by state; open includes idle.", []string{"cluster", "node", "state"}, nil)

	descSessions = prometheus.NewDesc("baton_sessions",
		"Client sessions connected now.", []string{"cluster"}, nil)
	descAccepted = prometheus.NewDesc("baton_sessions_accepted_total",
		"Client connections accepted.", []string{"cluster"}, nil)
	descRejected = prometheus.NewDesc("baton_sessions_rejected_total",
		"Client connections refused because limits.max_clients was reached.", []string{"cluster"}, nil)
	descStatements = prometheus.NewDesc("baton_statements_total",
		"Statements routed, by route: primary or replica.", []string{"cluster", "route"}, nil)
	descMisroutes = prometheus.NewDesc("baton_misroutes_total",
		"Writes a replica refused that were resent to the primary.", []string{"cluster"}, nil)
	descRetries = prometheus.NewDesc("baton_retries_total",
		"Reads resent to another node because a replica failed.", []string{"cluster"}, nil)
	descAuthFailures = prometheus.NewDesc("baton_auth_failures_total",
		"Failed client logins.", []string{"cluster"}, nil)
	descReadable = prometheus.NewDesc("baton_readable_replicas",
		"Replicas that may serve reads now.", []string{"cluster"}, nil)
	descPrimaryKnown = prometheus.NewDesc("baton_primary_known",
		"1 when the cluster has a known primary, else 0.", []string{"cluster"}, nil)
	descLagSeconds = prometheus.NewDesc("baton_replica_lag_seconds",
		"How old a replica's data may be (0 when it has replayed the primary's position); -1 unknown.", []string{"cluster", "node"}, nil)
	descLagBytes = prometheus.NewDesc("baton_replica_lag_bytes",
		"How far a replica's replayed WAL is behind the primary's (PostgreSQL); -1 unknown.", []string{"cluster", "node"}, nil)
	descFenced = prometheus.NewDesc("baton_node_fenced",
		"1 when a node claims the primary role but is not the epoch's primary (never routed to).", []string{"cluster", "node"}, nil)
	descEpoch = prometheus.NewDesc("baton_cluster_epoch",
		"The cluster's epoch: it rises with every primary change (0 without etcd).", []string{"cluster"}, nil)
	descPhase = prometheus.NewDesc("baton_cluster_phase",
		"1 for the cluster's current phase (stable, failing_over, switching_over).", []string{"cluster", "phase"}, nil)
	descFailovers = prometheus.NewDesc("baton_failovers_total",
		"Completed failovers and switchovers in the cluster's history (shared by all instances).", []string{"cluster"}, nil)
	descBuffered = prometheus.NewDesc("baton_buffered_statements",
		"Statements waiting in the failover buffer now.", []string{"cluster"}, nil)
	descBufferedTotal = prometheus.NewDesc("baton_buffered_statements_total",
		"Statements that waited in the failover buffer.", []string{"cluster"}, nil)
	descBufferFailed = prometheus.NewDesc("baton_buffer_failures_total",
		"Statements that gave up waiting in the failover buffer (full, window or max duration).", []string{"cluster"}, nil)
	descAlert = prometheus.NewDesc("baton_cluster_alert",
		"1 while the coordinator reports a problem it will not act on by itself (an automatic failover refused: failover.auto off, or within failover.min_interval).", []string{"cluster"}, nil)
	descPaused = prometheus.NewDesc("baton_failover_paused",
		"1 while automatic failover of the cluster is paused (baton pause), else 0.", []string{"cluster"}, nil)
	descDiverged = prometheus.NewDesc("baton_node_diverged",
		"1 when an old primary holds changes the current primary lacks (needs a rewind or repair).", []string{"cluster", "node"}, nil)
	descRYWWaits = prometheus.NewDesc("baton_read_your_writes_waits_total",
		"read_your_writes: waits on a replica for the session's last write before a read.", []string{"cluster"}, nil)
	descPoolWait = prometheus.NewDesc("baton_pool_wait_seconds",
		"How long sessions waited for a backend connection of the node (free, returned, or room to dial).", []string{"cluster", "node"}, nil)
	descParked = prometheus.NewDesc("baton_sessions_parked",
		"Idle client sessions parked without a goroutine or read buffer (limits.park_idle_after).", []string{"cluster"}, nil)
	descPinned = prometheus.NewDesc("baton_pinned_sessions",
		"Client sessions holding state that keeps them on one backend, by reason.", []string{"cluster", "reason"}, nil)
	descRYWFallbacks = prometheus.NewDesc("baton_read_your_writes_fallbacks_total",
		"read_your_writes: reads sent to the primary because no replica had the session's last write in time.", []string{"cluster"}, nil)
)

// collector reads the instance's live values at scrape time; it keeps no state of its own.
// Safe for concurrent use (scrapes may overlap).
type collector struct{ inst *proxy.Instance }

var _ prometheus.Collector = (*collector)(nil)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeUp, descNodeRole, descBackendConns, descSessions, descAccepted,
		descRejected, descStatements, descMisroutes, descRetries, descAuthFailures, descReadable, descPrimaryKnown,
		descLagSeconds, descLagBytes, descFenced, descEpoch, descPhase, descFailovers, descBuffered, descBufferedTotal, descBufferFailed,
		descRYWWaits, descRYWFallbacks, descAlert, descPaused, descDiverged, descPinned, descPoolWait, descParked} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, cs := range statuses(c.inst) {
		addShared(context.Background(), c.inst, &cs)
		cl := cs.Name
		for _, n := range cs.Nodes {
			gauge(descNodeUp, b2f(n.Up), cl, n.Name)
			for _, r := range roles {
				gauge(descNodeRole, b2f(n.Role == r), cl, n.Name, r)
			}
			gauge(descBackendConns, float64(n.Connections.Open), cl, n.Name, "open")
			gauge(descBackendConns, float64(n.Connections.Idle), cl, n.Name, "idle")
			gauge(descFenced, b2f(n.Fenced), cl, n.Name)
			gauge(descDiverged, b2f(n.Diverged != ""), cl, n.Name)
			if n.Role == "replica" {
				gauge(descLagSeconds, n.LagSeconds, cl, n.Name)
				gauge(descLagBytes, float64(n.LagBytes), cl, n.Name)
			}
		}
		gauge(descSessions, float64(cs.Sessions), cl)
		counter(descAccepted, cs.SessionsAccepted, cl)
		counter(descRejected, cs.SessionsRejected, cl)
		counter(descStatements, cs.Statements.Primary, cl, "primary")
		counter(descStatements, cs.Statements.Replica, cl, "replica")
		counter(descMisroutes, cs.Misroutes, cl)
		counter(descRetries, cs.Retries, cl)
		counter(descAuthFailures, cs.AuthFailures, cl)
		gauge(descReadable, float64(cs.ReadableReplicas), cl)
		gauge(descPrimaryKnown, b2f(cs.Primary != ""), cl)
		gauge(descEpoch, float64(cs.Epoch), cl)
		for _, ph := range []topology.Phase{topology.PhaseStable, topology.PhaseFailingOver, topology.PhaseSwitchingOver} {
			gauge(descPhase, b2f(cs.Phase == string(ph)), cl, string(ph))
		}
		counter(descFailovers, int64(cs.Failovers), cl)
		gauge(descBuffered, float64(cs.Buffered), cl)
		counter(descBufferedTotal, cs.BufferedTotal, cl)
		counter(descBufferFailed, cs.BufferFailed, cl)
		gauge(descAlert, b2f(cs.Alert != ""), cl)
		gauge(descPaused, b2f(cs.FailoverPaused), cl)
		counter(descRYWWaits, cs.RYWWaits, cl)
		counter(descRYWFallbacks, cs.RYWFallbacks, cl)
		for reason, n := range cs.Pinned {
			gauge(descPinned, float64(n), cl, reason)
		}
		gauge(descParked, float64(cs.SessionsParked), cl)
		for node, w := range poolWaits(c.inst, cl) {
			buckets := make(map[float64]uint64, len(pool.WaitBuckets))
			for i, ub := range pool.WaitBuckets {
				buckets[ub] = w.Cumulative[i]
			}
			ch <- prometheus.MustNewConstHistogram(descPoolWait, w.Count, w.Sum, buckets, cl, node)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// newRegistry returns a private registry with baton's collector and the Go runtime and process
// collectors. Nothing is registered globally.
func newRegistry(inst *proxy.Instance) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{inst: inst},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// poolWaits returns the acquire-wait histograms of cluster name's node pools.
func poolWaits(inst *proxy.Instance, name string) map[string]pool.WaitStats {
	for _, c := range inst.Clusters() {
		if c.Config.Name != name {
			continue
		}
		switch {
		case c.PG != nil:
			return c.PG.PoolWaits()
		case c.My != nil:
			return c.My.PoolWaits()
		}
	}
	return nil
}
