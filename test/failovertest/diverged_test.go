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
	"github.com/jackc/pgx/v5"
)

// TestPGDivergedOldPrimary: an old primary that commits after it was replaced (here: a forced
// failover, then a write made directly on the old primary, as a hung primary resuming would)
// is shown as "diverged, needs rewind" with its WAL end and the fork point from the new
// primary's timeline history, and `baton rejoin` refuses it with the pg_rewind steps.
func TestPGDivergedOldPrimary(t *testing.T) {
	cluster.RequirePG(t)
	c := cluster.StartPGForTest(t, cluster.PGOptions{Fast: true})
	b := batontest.StartPGBatonForTest(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := httptest.NewServer(admin.New(b.Inst, topology.Admin{}, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	defer adm.Close()
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
	waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool {
		return st.Epoch >= 1 && st.Phase == topology.PhaseStable && st.Primary == "pg1"
	})
	res := submit(t, b, topology.Request{Kind: "failover", To: "pg2", Force: true})
	if !res.OK || res.Primary != "pg2" {
		t.Fatalf("forced failover: %+v", res)
	}
	// The old primary, fenced, takes a commit anyway (a superuser overriding the fence, as a
	// resumed hung primary's in-flight commit would).
	old, err := pgx.Connect(ctx, c.Primary.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	for _, q := range []string{"SET default_transaction_read_only = off", "SET synchronous_commit = local",
		"CREATE TABLE lost_on_old (x int)", "INSERT INTO lost_on_old SELECT generate_series(1, 1000)"} {
		if _, err := old.Exec(ctx, q); err != nil {
			t.Fatalf("%s on the old primary: %v", q, err)
		}
	}
	var cs admin.ClusterStatus
	cluster.Eventually(t, 30*time.Second, "pg1 shown diverged", func() (bool, error) {
		cs = status()
		return len(cs.Diverged) == 1 && cs.Diverged[0].Node == "pg1", nil
	})
	d := cs.Diverged[0]
	t.Logf("diverged: %s\n%s", d.Detail, d.Steps)
	if !strings.Contains(d.Detail, "fork point") || !strings.Contains(d.Detail, "timeline 1") || !strings.Contains(d.Steps, "pg_rewind --target-pgdata="+c.Primary.DataDir) {
		t.Fatalf("divergence without positions or steps: %+v", d)
	}
	for _, n := range cs.Nodes {
		if n.Name == "pg1" && n.Diverged == "" {
			t.Fatalf("node pg1 not marked diverged: %+v", n)
		}
	}
	var table strings.Builder
	admin.WriteTable(&table, &admin.ClustersResponse{Clusters: []admin.ClusterStatus{cs}})
	if !strings.Contains(table.String(), "diverged, needs rewind") {
		t.Fatalf("baton status does not say diverged:\n%s", table.String())
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	r, err := b.Inst.Store().Submit(rctx, "pg", topology.Request{Kind: "rejoin", Node: "pg1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || !strings.Contains(r.Error, "diverged, needs rewind") || !strings.Contains(r.Error, "pg_rewind") {
		t.Fatalf("rejoin of a diverged node: %+v", r)
	}
}

// TestMyDivergedOldPrimary: the MariaDB counterpart: a commit on the fenced old primary after a
// forced failover makes it hold a GTID the new primary lacks; status says so and rejoin refuses
// it with the rebuild steps. A clean old primary (TestMyManualFailoverAndRejoin) still rejoins.
func TestMyDivergedOldPrimary(t *testing.T) {
	c := cluster.StartMariaDBForTest(t, cluster.MyOptions{})
	b := batontest.StartMyBatonForTest(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitState(t, b, 10*time.Second, "initial state", func(st topology.ClusterState) bool { return st.Epoch == 1 && st.Primary == "my1" })
	res := submit(t, b, topology.Request{Kind: "failover", To: "my2", Force: true})
	if !res.OK || res.Primary != "my2" {
		t.Fatalf("forced failover: %+v", res)
	}
	oldDB := cluster.OpenMySQL(t, c.Primary.RootDSN())
	cluster.Eventually(t, 20*time.Second, "the old primary is fenced", func() (bool, error) {
		ro, err := myQueryInt(ctx, oldDB, "SELECT @@read_only")
		return err == nil && ro == 1, err
	})
	// root holds READ ONLY ADMIN: the write goes through, as a hung primary's would have.
	if _, err := oldDB.ExecContext(ctx, "CREATE TABLE lost_on_old (x int)"); err != nil {
		t.Fatal(err)
	}
	var detail string
	cluster.Eventually(t, 30*time.Second, "my1 shown diverged", func() (bool, error) {
		d, err := b.Inst.Store().Diverged(ctx, "my")
		if err != nil || len(d) != 1 || d[0].Node != "my1" {
			return false, err
		}
		detail = d[0].Detail + "\n" + d[0].Steps
		return true, nil
	})
	t.Logf("diverged: %s", detail)
	if !strings.Contains(detail, "GTID") || !strings.Contains(detail, "mariadb-backup") {
		t.Fatalf("divergence without GTIDs or steps: %s", detail)
	}
	r := submit(t, b, topology.Request{Kind: "rejoin", Node: "my1"})
	if r.OK || !strings.Contains(r.Error, "diverged, needs rewind") {
		t.Fatalf("rejoin of a diverged node: %+v", r)
	}
}
