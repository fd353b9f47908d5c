package pgtest

import (
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestClientDisconnectMidQuery closes the client socket while its statement runs: baton must
// cancel the statement on the node (pg_sleep does not notice a closed socket by itself) and
// keep serving.
func TestClientDisconnectMidQuery(t *testing.T) {
	const prefix = "SELECT pg_sleep(5)"
	cases := []struct {
		name  string
		tx    bool
		send  func(q string) []pgproto3.FrontendMessage
		onPri bool
	}{
		{name: "simple", send: func(q string) []pgproto3.FrontendMessage {
			return []pgproto3.FrontendMessage{&pgproto3.Query{String: q}}
		}},
		{name: "extended", send: func(q string) []pgproto3.FrontendMessage {
			return []pgproto3.FrontendMessage{
				&pgproto3.Parse{Query: q}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'},
				&pgproto3.Execute{}, &pgproto3.Sync{},
			}
		}},
		{name: "in-transaction", tx: true, onPri: true, send: func(q string) []pgproto3.FrontendMessage {
			return []pgproto3.FrontendMessage{&pgproto3.Query{String: q}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl := ""
			hc := rawLogin(t, url)
			if tc.tx {
				tbl = createTable(t, "disc", "id int")
				for _, q := range []string{"BEGIN", "INSERT INTO " + tbl + " VALUES (1)"} {
					if codes := roundTrip(t, hc, &pgproto3.Query{String: q}); len(codes) > 0 {
						t.Fatalf("%s: %v", q, codes)
					}
				}
			}
			tag := uniqueName("disc")
			for _, m := range tc.send(prefix + " /* " + tag + " */") {
				hc.Frontend.Send(m)
			}
			if err := hc.Frontend.Flush(); err != nil {
				t.Fatal(err)
			}
			node := nodeRunning(t, prefix, tag, 3*time.Second)
			if tc.onPri && node != pg.Primary {
				t.Fatalf("the statement of a read-write transaction runs on %s; want the primary", node.Name)
			}
			if !tc.onPri && node == pg.Primary {
				t.Fatalf("a plain read runs on the primary; want a replica")
			}
			hc.Conn.Close()
			goneEverywhere(t, prefix, tag, 2*time.Second)
			if tc.tx {
				// The open transaction was rolled back, not committed.
				if n := queryInt(t, direct(t, pg.Primary), "SELECT count(*) FROM "+tbl); n != 0 {
					t.Fatalf("the abandoned transaction's row is on the primary (%d rows)", n)
				}
				p := direct(t, pg.Primary)
				cluster.Eventually(t, 2*time.Second, "no backend stays idle in the abandoned transaction", func() (bool, error) {
					var n int64
					err := p.QueryRow(ctxT(t), "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND query LIKE '%'||$1||'%'", tag).Scan(&n)
					return err == nil && n == 0, err
				})
			}
			assertServes(t, url)
		})
	}
}
