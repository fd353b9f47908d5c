package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// PostgreSQL item 11: with read_your_writes a session reads its own write at once, whatever
// the write was: COPY FROM STDIN (psql \copy), a committed transaction followed by a read-only
// one. Compared with a direct connection, which always sees its writes.
func TestFidelityReadsOwnWriteAfterCopyAndCommit(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) { cl.Consistency = topology.ReadYourWrites })
	rywURL := b.URL(pg)
	tbl := createTable(t, "fid_ryw", "i int")
	copyThenCount := func(t *testing.T, u string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "psql", u, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
			"-c", `\copy `+tbl+` from stdin`, "-c", "select count(*) from "+tbl)
		cmd.Env = os.Environ()
		cmd.Stdin = strings.NewReader("1\n2\n3\n\\.\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for i := 0; i < 20; i++ {
		got, want := copyThenCount(t, rywURL), copyThenCount(t, pg.Primary.AppURL())
		// Each round adds 3 rows through baton, then 3 directly.
		var g, w int
		fmt.Sscanf(lastLine(got), "%d", &g)
		fmt.Sscanf(lastLine(want), "%d", &w)
		if g != 6*i+3 || w != 6*i+6 {
			t.Fatalf("round %d: \\copy then count: through baton %q, direct %q; want %d and %d", i, got, want, 6*i+3, 6*i+6)
		}
	}

	c, err := pgx.Connect(ctxT(t), rywURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for i := 0; i < 20; i++ {
		ctx := ctxT(t)
		if err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "insert into "+tbl+" values (7)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var after int
		var onReplica bool
		if err := pgx.BeginTxFunc(ctx, c, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "select count(*), pg_is_in_recovery() from "+tbl).Scan(&after, &onReplica)
		}); err != nil {
			t.Fatal(err)
		}
		var onPrimary int
		if err := c.QueryRow(ctx, "/* baton:primary */ select count(*) from "+tbl).Scan(&onPrimary); err != nil {
			t.Fatal(err)
		}
		if after != onPrimary {
			t.Fatalf("round %d: a read-only transaction right after a commit saw %d rows; the primary has %d (read on a replica: %v)", i, after, onPrimary, onReplica)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
