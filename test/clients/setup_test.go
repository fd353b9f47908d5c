package clients

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// setup runs a scenario's set-up SQL (several statements) on the primary as the app user and
// waits until both replicas have applied it, so a read through baton sees the same data on
// any node.
func setup(t *testing.T, isPG bool, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if isPG {
		c, err := pgconn.Connect(ctx, pg.Primary.AppURL())
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, q).ReadAll(); err != nil {
			t.Fatalf("setup %q: %v", q, err)
		}
		waitPGReplicated(t, ctx)
		return
	}
	db, err := sql.Open("mysql", my.Primary.AppDSN()+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("setup %q: %v", q, err)
	}
	if err := my.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("setup: replicas did not catch up: %v", err)
	}
}

// waitPGReplicated blocks until every replica replayed the primary's WAL so far.
func waitPGReplicated(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := pgReplicated(ctx); err != nil {
		t.Fatal(err)
	}
}

// pgReplicated waits until every replica replayed the primary's WAL so far. The insert position
// is used: with synchronous_commit off (the harness's fast mode) a commit returns before its WAL
// is written.
func pgReplicated(ctx context.Context) error {
	p, err := pgx.Connect(ctx, pg.Primary.SuperURL())
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	var lsn string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return err
	}
	for _, r := range pg.Replicas {
		rc, err := pgx.Connect(ctx, r.SuperURL())
		if err != nil {
			return err
		}
		defer rc.Close(context.Background())
		for {
			var ok bool
			if err := rc.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&ok); err != nil {
				return err
			}
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("replica %s did not replay %s: %w", r.Name, lsn, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitMyRunning waits until a statement whose text contains marker runs on some MariaDB node
// (through baton it may run on a replica), and returns that node's processlist id.
func waitMyRunning(ctx context.Context, marker string) (node int, id int64, err error) {
	dbs := make([]*sql.DB, 0, 3)
	for _, n := range my.Nodes() {
		db, err := sql.Open("mysql", n.RootDSN())
		if err != nil {
			return 0, 0, err
		}
		defer db.Close()
		dbs = append(dbs, db)
	}
	for {
		for i, db := range dbs {
			err := db.QueryRowContext(ctx, "SELECT id FROM information_schema.processlist WHERE info LIKE ? AND info NOT LIKE '%processlist%' LIMIT 1",
				"%"+marker+"%").Scan(&id)
			if err == nil {
				return i, id, nil
			}
			if err != sql.ErrNoRows {
				return 0, 0, err
			}
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
