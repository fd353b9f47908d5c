package admin_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
)

// statusDoc is a fixed /api/v1/clusters answer: a healthy cluster with one draining replica and
// one down, and a cluster without a primary.
const statusDoc = `{
  "clusters": [
    {
      "name": "pg", "engine": "postgres", "listen": "127.0.0.1:6432", "consistency": "eventual",
      "primary": "pg1", "readable_replicas": 1,
      "nodes": [
        {"name": "pg1", "address": "10.0.0.1:5432", "up": true, "role": "primary", "readable": false,
         "weight": 1, "drain": false, "checked": "2026-01-02T03:04:05Z", "connections": {"open": 5, "idle": 2}},
        {"name": "pg2", "address": "10.0.0.2:5432", "up": true, "role": "replica", "readable": true,
         "weight": 1, "drain": false, "connections": {"open": 4, "idle": 0}, "lag_seconds": 0.4, "lag_bytes": 8192},
        {"name": "pg3-long-name", "address": "10.0.0.3:5432", "up": true, "role": "replica", "readable": false,
         "weight": 1, "drain": true, "connections": {"open": 0, "idle": 0}, "lag_seconds": -1, "lag_bytes": -1,
         "unreadable": "drained"},
        {"name": "pg4", "address": "10.0.0.4:5432", "up": false, "role": "unknown", "readable": false,
         "weight": 1, "drain": true, "last_error": "dial tcp 10.0.0.4:5432: connect: connection refused\tafter 3 tries, and a long tail that will not fit",
         "connections": {"open": 0, "idle": 0}}
      ],
      "sessions": 7, "sessions_accepted": 40, "sessions_rejected": 0,
      "statements": {"primary": 120, "replica": 345}, "misroutes": 2, "retries": 1, "auth_failures": 0
    },
    {
      "name": "my", "engine": "mysql", "listen": "127.0.0.1:3306", "consistency": "read_your_writes",
      "primary": "", "readable_replicas": 0,
      "nodes": [
        {"name": "my1", "address": "10.0.1.1:3306", "up": false, "role": "unknown", "readable": false,
         "weight": 1, "drain": false, "last_error": "timeout", "connections": {"open": 0, "idle": 0}}
      ],
      "sessions": 0, "sessions_accepted": 0, "sessions_rejected": 3,
      "statements": {"primary": 0, "replica": 0}, "misroutes": 0, "retries": 0, "auth_failures": 0
    }
  ]
}`

const statusTable = `CLUSTER  NODE           ROLE     STATE  READABLE  LAG         SESSIONS  LAST-ERROR
pg       pg1            primary  up     no        -           3         -
pg       pg2            replica  up     yes       0.4s 8192B  4         -
pg       pg3-long-name  replica  drain  no        -           0         drained
pg       pg4            unknown  down   no        -           0         dial tcp 10.0.0.4:5432: connect: connection refused after 3…
my       my1            unknown  down   no        -           0         timeout

cluster pg (postgres, 127.0.0.1:6432, eventual): primary pg1, 1 readable replicas, 7 sessions, statements 120 primary / 345 replica, 2 misroutes, 1 retries
cluster my (mysql, 127.0.0.1:3306, read_your_writes): primary NONE, 0 readable replicas, 0 sessions, statements 0 primary / 0 replica, 0 misroutes, 0 retries
`

func TestWriteTable(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"two clusters", statusDoc, statusTable},
		{"no clusters", `{"clusters": []}`, "CLUSTER  NODE  ROLE  STATE  READABLE  LAG  SESSIONS  LAST-ERROR\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc admin.ClustersResponse
			if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := admin.WriteTable(&b, &doc); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

// A coordinator's alert is its own line under the cluster, with the time it was raised.
func TestWriteTableAlert(t *testing.T) {
	doc := admin.ClustersResponse{Clusters: []admin.ClusterStatus{{
		Name: "my", Engine: "mysql", Listen: "127.0.0.1:3306", Consistency: "eventual", Primary: "my2",
		Epoch: 2, Phase: "stable",
		Alert:      "primary my2 is down; no automatic failover until … run `baton failover --cluster my`",
		AlertSince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local),
	}}}
	var b strings.Builder
	if err := admin.WriteTable(&b, &doc); err != nil {
		t.Fatal(err)
	}
	want := "\n  ALERT since 03:04:05: primary my2 is down; no automatic failover until … run `baton failover --cluster my`"
	if !strings.Contains(b.String(), want) {
		t.Errorf("table lacks the alert line %q:\n%s", want, b.String())
	}
	doc.Clusters[0].Alert = ""
	b.Reset()
	if err := admin.WriteTable(&b, &doc); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "ALERT") {
		t.Errorf("an ALERT line without an alert:\n%s", b.String())
	}
}
