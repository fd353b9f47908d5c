package failovertest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// TestMyMinIntervalRefusesFlapping: after an automatic failover, a second dead primary within
// failover.min_interval is not failed over automatically. The refusal is an alert every
// instance's status and /metrics show, naming the command that resolves it; `baton failover`
// (no --force needed: the primary is down) does, and the alert goes away.
func TestMyMinIntervalRefusesFlapping(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	b := batontest.StartMyBatonForTest(t, c, func(cl *topology.Cluster) {
		cl.Failover.MinInterval = topology.Duration(time.Hour)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := httptest.NewServer(admin.New(b.Inst, topology.Admin{}, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	defer adm.Close()
	status := func() admin.ClusterStatus {
		t.Helper()
		resp, err := adm.Client().Get(adm.URL + "/api/v1/clusters")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Clusters []admin.ClusterStatus `json:"clusters"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || len(doc.Clusters) != 1 {
			t.Fatalf("status: %v (%d clusters)", err, len(doc.Clusters))
		}
		return doc.Clusters[0]
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

	st := waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool { return st.Epoch == 1 && st.Primary == "my1" })
	if err := c.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, b, 20*time.Second, "the first, automatic failover", func(s topology.ClusterState) bool {
		return s.Epoch == 2 && s.Phase == topology.PhaseStable && s.Primary != "my1"
	})
	// The failover is in the history once it has re-pointed the other replica too: only then
	// is that replica a candidate for the next one.
	cluster.Eventually(t, 20*time.Second, "the first failover in the history", func() (bool, error) {
		h, err := b.Inst.Store().History(ctx, "my")
		return err == nil && len(h) > 0 && h[len(h)-1].Epoch == 2 && h[len(h)-1].Kind == "failover", err
	})
	second := map[string]*cluster.MyNode{"my2": c.Replicas[0], "my3": c.Replicas[1]}[st.Primary]
	if err := second.Kill(); err != nil {
		t.Fatal(err)
	}
	var alert string
	cluster.Eventually(t, 20*time.Second, "an alert for the refused failover", func() (bool, error) {
		alert = status().Alert
		return alert != "", nil
	})
	t.Logf("alert: %s", alert)
	if !strings.Contains(alert, "min_interval") || !strings.Contains(alert, "baton failover --cluster my") {
		t.Fatalf("alert %q names neither failover.min_interval nor the command", alert)
	}
	if v := metric("baton_cluster_alert"); v != "1" {
		t.Fatalf("baton_cluster_alert = %q while the alert stands, want 1", v)
	}
	// The refusal holds: the state keeps naming the dead primary.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if s, _ := b.Inst.Clusters()[0].State(); s.Epoch != 2 || s.Primary != st.Primary {
			t.Fatalf("a failover within failover.min_interval happened: %+v", s)
		}
	}

	res := submit(t, b, topology.Request{Kind: "failover"})
	if !res.OK || res.Epoch != 3 || res.Primary == st.Primary || res.Primary == "my1" {
		t.Fatalf("manual failover: %+v", res)
	}
	cluster.Eventually(t, 10*time.Second, "the alert withdrawn", func() (bool, error) { return status().Alert == "", nil })
	if v := metric("baton_cluster_alert"); v != "0" {
		t.Fatalf("baton_cluster_alert = %q after the failover, want 0", v)
	}
	db := cluster.OpenMySQL(t, b.DSN(c, "timeout=5s"))
	if _, err := db.ExecContext(ctx, "CREATE TABLE after_flap (x int)"); err != nil {
		t.Fatalf("a write after the manual failover: %v", err)
	}
}
