package admin

import (
	"github.com/baton-proxy/baton/proxy"
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
)

// collector reads the instance's live values at scrape time; it keeps no state of its own.
// Safe for concurrent use (scrapes may overlap).
type collector struct{ inst *proxy.Instance }

var _ prometheus.Collector = (*collector)(nil)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeUp, descNodeRole, descBackendConns, descSessions, descAccepted,
		descRejected, descStatements, descMisroutes, descRetries, descAuthFailures, descReadable, descPrimaryKnown} {
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
		cl := cs.Name
		for _, n := range cs.Nodes {
			gauge(descNodeUp, b2f(n.Up), cl, n.Name)
			for _, r := range roles {
				gauge(descNodeRole, b2f(n.Role == r), cl, n.Name, r)
			}
			gauge(descBackendConns, float64(n.Connections.Open), cl, n.Name, "open")
			gauge(descBackendConns, float64(n.Connections.Idle), cl, n.Name, "idle")
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
