// Package pgtest runs baton against a real PostgreSQL primary with two streaming replicas and
// drives it with real clients (pgx, database/sql, psql). Every test proves where a statement ran.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/jackc/pgx/v5"
)

var (
	pg    *cluster.PGCluster
	baton *batontest.Baton
	url   string // through baton, as the app user
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := cluster.PGBinDir(); err != nil {
		fmt.Fprintf(os.Stderr, "PostgreSQL is required by these tests: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	pg, err = cluster.StartPG(ctx, cluster.PGOptions{Fast: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start PostgreSQL cluster: %v\n", err)
		return 1
	}
	defer pg.Stop()
	cfg, err := batontest.PGConfig(pg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	baton, err = batontest.StartBaton(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer baton.Stop()
	url = baton.URL(pg)
	code := m.Run()
	if code != 0 {
		pg.DumpLogs(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	}
	return code
}

// connect opens a pgx connection through baton with the given exec mode.
func connect(t testing.TB, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through baton: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// direct opens a superuser connection straight to a node.
func direct(t testing.TB, n *cluster.PGNode) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, n.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// where returns the port of the server that ran the query and whether it is a replica.
func where(t testing.TB, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ctx context.Context, prefix string) (port int, replica bool) {
	t.Helper()
	if err := q.QueryRow(ctx, prefix+"SELECT inet_server_port(), pg_is_in_recovery()").Scan(&port, &replica); err != nil {
		t.Fatalf("where: %v", err)
	}
	return port, replica
}

// waitReplicated blocks until every replica has replayed everything the primary has written so
// far. The insert position is used, not the write position: with synchronous_commit = off (the
// harness's fast mode) a commit returns before its WAL is written.
func waitReplicated(t testing.TB) {
	t.Helper()
	ctx := ctxT(t)
	p := direct(t, pg.Primary)
	var lsn string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	for _, r := range pg.Replicas {
		rc := direct(t, r)
		for {
			var ok bool
			if err := rc.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("replica %s did not replay %s", r.Name, lsn)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}
