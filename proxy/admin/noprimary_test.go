package admin_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/topology"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestNoPrimary runs baton in front of nodes that do not exist: the process is healthy, not
// ready, and says why; the metrics show every node down and no primary.
func TestNoPrimary(t *testing.T) {
	yml := `log_level: error
clusters:
  - name: ghost
    engine: postgres
    listen: 127.0.0.1:0
    probe_interval: 50ms
    probe_timeout: 500ms
    nodes:
      - {name: a, address: "` + closedAddr(t) + `"}
      - {name: b, address: "` + closedAddr(t) + `"}
    users:
      - {name: app, password: app}
`
	cfg, err := topology.Parse("ghost.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := proxy.Start(context.Background(), cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Shutdown(time.Second) })
	s := startAdmin(t, inst, "")

	if code, _ := get(t, s, "/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	code, body := get(t, s, "/readyz", "")
	var ready struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	}
	if code != http.StatusServiceUnavailable || json.Unmarshal(body, &ready) != nil || ready.Ready || !strings.Contains(ready.Reason, "ghost") {
		t.Errorf("/readyz: %d %s, want 503 naming cluster ghost", code, body)
	}

	fams := scrape(t, s, "")
	if v, ok := value(fams, "baton_primary_known", map[string]string{"cluster": "ghost"}); !ok || v != 0 {
		t.Errorf("baton_primary_known = %v (present %v), want 0", v, ok)
	}
	for _, n := range []string{"a", "b"} {
		if v, ok := value(fams, "baton_node_up", map[string]string{"cluster": "ghost", "node": n}); !ok || v != 0 {
			t.Errorf("baton_node_up{node=%s} = %v (present %v), want 0", n, v, ok)
		}
		if v, _ := value(fams, "baton_node_role", map[string]string{"node": n, "role": "unknown"}); v != 1 {
			t.Errorf("baton_node_role{node=%s,role=unknown} = %v, want 1", n, v)
		}
	}

	doc := clusters(t, s, "")
	if len(doc.Clusters) != 1 || doc.Clusters[0].Primary != "" || len(doc.Clusters[0].Nodes) != 2 {
		t.Fatalf("clusters: %+v", doc)
	}
	for _, n := range doc.Clusters[0].Nodes {
		if n.Up || n.Readable || n.LastError == "" {
			t.Errorf("node %+v: want down, not readable, with an error", n)
		}
	}

	s.MarkDraining()
	if code, body := get(t, s, "/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Errorf("/readyz while draining: %d %s", code, body)
	}
}

// TestServerLifecycle covers Start on a disabled configuration, Addr before Start, and a
// Shutdown that makes the port free again.
func TestServerLifecycle(t *testing.T) {
	inst, err := proxy.Start(context.Background(), &topology.Config{}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Shutdown(time.Second)
	for _, listen := range []string{"", "off"} {
		s := admin.New(inst, topology.Admin{Listen: listen}, testLogger())
		if err := s.Start(); err != admin.ErrDisabled {
			t.Errorf("Start with listen %q: %v, want ErrDisabled", listen, err)
		}
		if s.Addr() != nil || s.URL() != "" {
			t.Errorf("Addr before Start: %v %q", s.Addr(), s.URL())
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown before Start: %v", err)
		}
	}

	s := admin.New(inst, topology.Admin{Listen: "127.0.0.1:0"}, testLogger())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	addr := s.Addr().String()
	if code, body := get(t, s, "/readyz", ""); code != http.StatusOK {
		// No clusters: nothing lacks a primary.
		t.Errorf("/readyz without clusters: %d %s", code, body)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still bound after Shutdown: %v", err)
	}
	ln.Close()
}
