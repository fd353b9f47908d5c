package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startAdmin starts an admin server for inst on a free loopback port and stops it at the end.
func startAdmin(t *testing.T, inst *proxy.Instance, token string) *admin.Server {
	t.Helper()
	s := admin.New(inst, topology.Admin{Listen: "127.0.0.1:0", Token: topology.Secret(token)}, testLogger())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("admin shutdown: %v", err)
		}
	})
	return s
}

// get fetches path from s with an optional bearer token.
func get(t *testing.T, s *admin.Server, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func clusters(t *testing.T, s *admin.Server, token string) admin.ClustersResponse {
	t.Helper()
	code, body := get(t, s, "/api/v1/clusters", token)
	if code != http.StatusOK {
		t.Fatalf("/api/v1/clusters: %d %s", code, body)
	}
	var doc admin.ClustersResponse
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("/api/v1/clusters: %v\n%s", err, body)
	}
	return doc
}

// scrape parses /metrics.
func scrape(t *testing.T, s *admin.Server, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, s, "/metrics", token)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series of family name whose labels include want; ok is false
// when there is no such series.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

func nodeByAddr(cs admin.ClusterStatus, addr string) *admin.NodeStatus {
	for i := range cs.Nodes {
		if cs.Nodes[i].Address == addr {
			return &cs.Nodes[i]
		}
	}
	return nil
}

// TestAdminAgainstPostgres drives a real primary with two replicas through an in-process baton
// and checks every admin endpoint against what happened, including a replica crash.
func TestAdminAgainstPostgres(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	b := batontest.StartPGBatonForTest(t, c, nil)
	s := startAdmin(t, b.Inst, "")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.URL(c))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS admin_probe (x int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO admin_probe VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("healthz and readyz", func(t *testing.T) {
		if code, body := get(t, s, "/healthz", ""); code != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
			t.Fatalf("/healthz: %d %q", code, body)
		}
		if code, body := get(t, s, "/readyz", ""); code != http.StatusOK {
			t.Fatalf("/readyz: %d %s", code, body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		fams := scrape(t, s, "")
		if v, ok := value(fams, "baton_statements_total", map[string]string{"cluster": "pg", "route": "replica"}); !ok || v <= 0 {
			t.Errorf("baton_statements_total{route=replica} = %v (present %v), want > 0", v, ok)
		}
		if v, ok := value(fams, "baton_statements_total", map[string]string{"cluster": "pg", "route": "primary"}); !ok || v <= 0 {
			t.Errorf("baton_statements_total{route=primary} = %v (present %v), want > 0", v, ok)
		}
		up := fams["baton_node_up"].GetMetric()
		if len(up) != 3 {
			t.Fatalf("baton_node_up has %d series, want 3", len(up))
		}
		for _, m := range up {
			if m.GetGauge().GetValue() != 1 {
				t.Errorf("baton_node_up %v = %v, want 1", m.GetLabel(), m.GetGauge().GetValue())
			}
		}
		for name, want := range map[string]float64{"baton_sessions": 1, "baton_readable_replicas": 2, "baton_primary_known": 1} {
			if v, _ := value(fams, name, map[string]string{"cluster": "pg"}); v != want {
				t.Errorf("%s = %v, want %v", name, v, want)
			}
		}
		if v, _ := value(fams, "baton_sessions_accepted_total", map[string]string{"cluster": "pg"}); v < 1 {
			t.Errorf("baton_sessions_accepted_total = %v, want ≥ 1", v)
		}
		open := 0.0
		for _, n := range []string{"pg1", "pg2", "pg3"} {
			v, ok := value(fams, "baton_backend_connections", map[string]string{"cluster": "pg", "node": n, "state": "open"})
			if !ok {
				t.Errorf("no baton_backend_connections{node=%s,state=open}", n)
			}
			open += v
		}
		if open < 1 {
			t.Errorf("baton_backend_connections{state=open} sums to %v with a session open, want ≥ 1", open)
		}
		for _, n := range []string{"pg1", "pg2", "pg3"} {
			sum := 0.0
			for _, r := range []string{"primary", "replica", "unknown"} {
				v, _ := value(fams, "baton_node_role", map[string]string{"cluster": "pg", "node": n, "role": r})
				sum += v
			}
			if sum != 1 {
				t.Errorf("baton_node_role for %s: %v roles set, want exactly 1", n, sum)
			}
		}
		if v, _ := value(fams, "baton_node_role", map[string]string{"node": "pg1", "role": "primary"}); v != 1 {
			t.Errorf("baton_node_role{node=pg1,role=primary} = %v, want 1", v)
		}
		for _, name := range []string{"baton_misroutes_total", "baton_retries_total", "baton_auth_failures_total", "baton_sessions_rejected_total"} {
			if _, ok := value(fams, name, map[string]string{"cluster": "pg"}); !ok {
				t.Errorf("%s missing", name)
			}
		}
		if fams["go_goroutines"] == nil {
			t.Error("go runtime metrics missing")
		}
		// The registry is private: nothing of baton's reaches the global one.
		global, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range global {
			if strings.HasPrefix(f.GetName(), "baton_") {
				t.Errorf("%s is registered globally", f.GetName())
			}
		}
	})

	t.Run("api", func(t *testing.T) {
		doc := clusters(t, s, "")
		if len(doc.Clusters) != 1 {
			t.Fatalf("%d clusters, want 1", len(doc.Clusters))
		}
		cs := doc.Clusters[0]
		primary := nodeByAddr(cs, c.Primary.Addr())
		if primary == nil || cs.Primary != primary.Name || primary.Role != "primary" || !primary.Up {
			t.Fatalf("primary %q, node %+v; want the node at %s", cs.Primary, primary, c.Primary.Addr())
		}
		for _, r := range c.Replicas {
			n := nodeByAddr(cs, r.Addr())
			if n == nil || !n.Readable || !n.Up || n.Role != "replica" || n.Checked.IsZero() {
				t.Errorf("replica at %s: %+v, want up, readable, checked", r.Addr(), n)
			}
		}
		if cs.Engine != "postgres" || cs.Consistency != "read_your_writes" || cs.Listen != b.Inst.Clusters()[0].Addr().String() {
			t.Errorf("cluster header: %+v", cs)
		}
		if cs.Sessions != 1 || cs.Statements.Replica == 0 || cs.Statements.Primary == 0 || cs.ReadableReplicas != 2 {
			t.Errorf("counters: sessions %d, statements %+v, readable %d", cs.Sessions, cs.Statements, cs.ReadableReplicas)
		}

		code, body := get(t, s, "/api/v1/clusters/pg", "")
		var one admin.ClusterStatus
		if code != http.StatusOK || json.Unmarshal(body, &one) != nil || one.Name != "pg" || len(one.Nodes) != 3 {
			t.Errorf("/api/v1/clusters/pg: %d %s", code, body)
		}
		if code, body := get(t, s, "/api/v1/clusters/nope", ""); code != http.StatusNotFound || !strings.Contains(string(body), "nope") {
			t.Errorf("/api/v1/clusters/nope: %d %s", code, body)
		}
	})

	t.Run("pinned sessions", func(t *testing.T) {
		pinned := func() (api int64, metric float64, table string) {
			doc := clusters(t, s, "")
			metric, _ = value(scrape(t, s, ""), "baton_pinned_sessions", map[string]string{"cluster": "pg", "reason": "temp_table"})
			var buf strings.Builder
			if err := admin.WriteTable(&buf, &doc); err != nil {
				t.Fatal(err)
			}
			return doc.Clusters[0].Pinned["temp_table"], metric, buf.String()
		}
		if api, metric, _ := pinned(); api != 0 || metric != 0 {
			t.Fatalf("before: temp_table pins %d (metric %v); want 0", api, metric)
		}
		other, err := pgx.Connect(ctx, b.URL(c))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(ctx, "CREATE TEMP TABLE admin_pin (x int)"); err != nil {
			t.Fatal(err)
		}
		if f := scrape(t, s, "")["baton_pool_wait_seconds"]; f == nil || len(f.GetMetric()) != 3 || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 && f.GetMetric()[1].GetHistogram().GetSampleCount() == 0 && f.GetMetric()[2].GetHistogram().GetSampleCount() == 0 {
			t.Fatalf("baton_pool_wait_seconds: %v; want a histogram per node with the session's acquisitions", f)
		}
		api, metric, table := pinned()
		if api != 1 || metric != 1 || !strings.Contains(table, "pinned sessions: 1 temp_table") {
			t.Fatalf("with a temp table: pins %d, metric %v, table:\n%s\nwant 1, 1 and a 'pinned sessions: 1 temp_table' line", api, metric, table)
		}
		if _, err := other.Exec(ctx, "DISCARD TEMP"); err != nil {
			t.Fatal(err)
		}
		if api, metric, _ := pinned(); api != 0 || metric != 0 {
			t.Fatalf("after DISCARD TEMP: pins %d (metric %v); want 0", api, metric)
		}
		if _, err := other.Exec(ctx, "CREATE TEMP TABLE admin_pin2 (x int)"); err != nil {
			t.Fatal(err)
		}
		other.Close(ctx)
		deadline := time.Now().Add(10 * time.Second)
		for api, metric, _ := pinned(); api != 0 || metric != 0; api, metric, _ = pinned() {
			if time.Now().After(deadline) {
				t.Fatalf("10 s after the pinned client left: pins %d (metric %v); want 0", api, metric)
			}
			time.Sleep(20 * time.Millisecond) // polling the API for the session's end
		}
	})

	t.Run("token", func(t *testing.T) {
		const token = "t0ken-for-the-test"
		ts := startAdmin(t, b.Inst, token)
		for _, path := range []string{"/metrics", "/readyz", "/api/v1/clusters", "/api/v1/clusters/pg"} {
			for _, bad := range []string{"", "wrong", token + "x"} {
				if code, body := get(t, ts, path, bad); code != http.StatusUnauthorized {
					t.Errorf("%s with token %q: %d %s, want 401", path, bad, code, body)
				}
			}
			if code, body := get(t, ts, path, token); code != http.StatusOK {
				t.Errorf("%s with the token: %d %s", path, code, body)
			}
		}
		if code, _ := get(t, ts, "/healthz", ""); code != http.StatusOK {
			t.Errorf("/healthz without a token: %d, want 200", code)
		}
		if got := clusters(t, ts, token); len(got.Clusters) != 1 {
			t.Errorf("clusters with the token: %+v", got)
		}
	})

	t.Run("replica down", func(t *testing.T) {
		victim := c.Replicas[0]
		var name string
		if n := nodeByAddr(clusters(t, s, "").Clusters[0], victim.Addr()); n != nil {
			name = n.Name
		}
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			cs := clusters(t, s, "").Clusters[0]
			n := nodeByAddr(cs, victim.Addr())
			v, ok := value(scrape(t, s, ""), "baton_node_up", map[string]string{"cluster": "pg", "node": name})
			if n != nil && !n.Up && !n.Readable && n.LastError != "" && ok && v == 0 {
				if cs.ReadableReplicas != 1 {
					t.Errorf("readable replicas %d with one replica down, want 1", cs.ReadableReplicas)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after killing %s: node %+v, baton_node_up %v (present %v)", name, n, v, ok)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The primary is still known: still ready.
		if code, body := get(t, s, "/readyz", ""); code != http.StatusOK {
			t.Errorf("/readyz with a replica down: %d %s", code, body)
		}
	})
}
