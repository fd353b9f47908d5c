// Package mytest runs baton against a real MariaDB primary with two GTID replicas and drives
// it with real clients (go-sql-driver/mysql, the mariadb CLI). Every test proves which node
// answered (@@port).
package mytest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	_ "github.com/go-sql-driver/mysql"
)

var (
	my    *cluster.MyCluster
	baton *batontest.Baton
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if _, err := cluster.MariaDBBinDir(); err != nil {
		fmt.Fprintf(os.Stderr, "MariaDB is required by these tests: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	my, err = cluster.StartMariaDB(ctx, cluster.MyOptions{Fast: true, Settings: []string{"max_allowed_packet = 64M"}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start MariaDB cluster: %v\n", err)
		return 1
	}
	defer my.Stop()
	cfg, err := batontest.MyConfig(my, nil)
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
	code := m.Run()
	if code != 0 {
		my.DumpLogs(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	}
	return code
}

// open returns a database/sql handle through baton with DSN parameters.
func open(t testing.TB, params string) *sql.DB {
	t.Helper()
	return cluster.OpenMySQL(t, baton.DSN(my, params))
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// queryer is *sql.DB, *sql.Conn or *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// where returns the port of the node that answered. (@@read_only is not read here: the
// classifier sends reads of node-role variables to the primary.)
func where(t testing.TB, q queryer, ctx context.Context, prefix string) (port int) {
	t.Helper()
	if err := q.QueryRowContext(ctx, prefix+"SELECT @@port").Scan(&port); err != nil {
		t.Fatalf("where: %v", err)
	}
	return port
}

func wantPrimary(t testing.TB, what string, port int) {
	t.Helper()
	if port != my.Primary.Port {
		t.Fatalf("%s ran on port %d; want the primary (%d)", what, port, my.Primary.Port)
	}
}

func wantReplica(t testing.TB, what string, port int) {
	t.Helper()
	for _, r := range my.Replicas {
		if r.Port == port {
			return
		}
	}
	t.Fatalf("%s ran on port %d; want a replica (primary is %d)", what, port, my.Primary.Port)
}

// waitReplicated blocks until every replica has applied the primary's binlog so far.
func waitReplicated(t testing.TB) {
	t.Helper()
	ctx := ctxT(t)
	if err := my.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
}
