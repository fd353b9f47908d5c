package failovertest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// TestPGPauseResume: with automatic failover paused (`baton pause`), a killed primary is not
// failed over — the status, the alert and baton_failover_paused say why — and a planned
// switchover still works while paused; after `baton resume` the dead primary is failed over.
func TestPGPauseResume(t *testing.T) {
	cluster.RequirePG(t)
	c := cluster.StartPGForTest(t, cluster.PGOptions{Fast: true})
	b := batontest.StartPGBatonForTest(t, c, func(cl *topology.Cluster) {
		cl.Failover.MinInterval = topology.Duration(time.Second) // the switchover is a primary change too
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := httptest.NewServer(admin.New(b.Inst, topology.Admin{}, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	defer adm.Close()
	post := func(path string) topology.Result {
		t.Helper()
		resp, err := adm.Client().Post(adm.URL+"/api/v1/clusters/pg/"+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res topology.Result
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || !res.OK {
			t.Fatalf("POST %s: %s %+v %v", path, resp.Status, res, err)
		}
		return res
	}
	status := func() admin.ClusterStatus {
		t.Helper()
		resp, err := adm.Client().Get(adm.URL + "/api/v1/clusters/pg")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var cs admin.ClusterStatus
		if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	metric := func(name string) string {
		t.Helper()
		resp, err := adm.Client().Get(adm.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, name+"{") {
				return l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		return ""
	}

	st := waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool {
		return st.Epoch >= 1 && st.Phase == topology.PhaseStable && st.Primary == "pg1"
	})
	post("pause?reason=primary+restart")
	if cs := status(); !cs.FailoverPaused || cs.Pause == nil || cs.Pause.Reason != "primary restart" {
		t.Fatalf("status after pause: paused %v %+v", cs.FailoverPaused, cs.Pause)
	}
	if v := metric("baton_failover_paused"); v != "1" {
		t.Fatalf("baton_failover_paused = %q while paused, want 1", v)
	}

	// A planned switchover still works while paused.
	res, _ := switchover(t, b, "pg2")
	if !res.OK || res.Primary != "pg2" {
		t.Fatalf("switchover while paused: %+v", res)
	}
	st = waitState(t, b, 10*time.Second, "switchover published", func(s topology.ClusterState) bool {
		return s.Epoch > st.Epoch && s.Phase == topology.PhaseStable && s.Primary == "pg2"
	})

	// The primary dies: no failover while paused, and the alert says so.
	if err := c.Replicas[0].Kill(); err != nil {
		t.Fatal(err)
	}
	var alert string
	cluster.Eventually(t, 20*time.Second, "an alert for the paused failover", func() (bool, error) {
		alert = status().Alert
		return alert != "", nil
	})
	if !strings.Contains(alert, "paused") || !strings.Contains(alert, "baton resume --cluster pg") {
		t.Fatalf("alert %q does not say paused and how to resume", alert)
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if s, _ := b.Inst.Clusters()[0].State(); s.Epoch != st.Epoch || s.Primary != "pg2" {
			t.Fatalf("failed over while paused: %+v", s)
		}
	}

	resumed := time.Now()
	post("resume")
	if v := metric("baton_failover_paused"); v != "0" {
		t.Fatalf("baton_failover_paused = %q after resume, want 0", v)
	}
	st = waitState(t, b, 20*time.Second, "failover after resume", func(s topology.ClusterState) bool {
		return s.Epoch > st.Epoch && s.Phase == topology.PhaseStable && s.Primary != "pg2" && s.Primary != ""
	})
	t.Logf("failed over to %s %v after resume", st.Primary, time.Since(resumed).Round(time.Millisecond))
	cluster.Eventually(t, 10*time.Second, "the alert withdrawn", func() (bool, error) { return status().Alert == "", nil })
	conn, err := pgx.Connect(ctx, b.URL(c))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE after_resume (x int)"); err != nil {
		t.Fatalf("a write through baton after the failover: %v", err)
	}
}
