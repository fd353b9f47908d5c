package pgtest

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/lib/pq" // registers the "postgres" database/sql driver
)

// PostgreSQL item 5: a cancel reaches only the statement it was meant for. lib/pq watches a
// transaction's context and sends a CancelRequest when it ends, racing with the Rollback and
// the next Begin on the same connection; through baton that cancel used to hit baton's own
// replay or the next client's BEGIN.
func TestFidelityCancelHitsOnlyItsStatement(t *testing.T) {
	const rounds = 1000
	loop := func(u string) (failures int, last error) {
		db, err := sql.Open("postgres", u)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		// Session state that baton replays on every backend it uses for this session.
		if _, err := db.Exec("set statement_timeout = '60s'"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < rounds; i++ {
			ctx, cancel := context.WithCancel(context.Background())
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				cancel()
				failures, last = failures+1, err
				continue
			}
			cancel()
			tx.Rollback() // lib/pq drops a connection whose cancel it sent: an error here is normal
			tx2, err := db.Begin()
			if err != nil {
				failures, last = failures+1, err
				continue
			}
			if err := tx2.Rollback(); err != nil {
				failures, last = failures+1, err
			}
		}
		return failures, last
	}
	viaBaton, lastB := loop(url)
	direct, lastD := loop(pg.Primary.AppURL())
	t.Logf("failures in %d rounds: through baton %d (last: %v), direct %d (last: %v)", rounds, viaBaton, lastB, direct, lastD)
	if viaBaton > direct {
		t.Fatalf("through baton %d of %d rounds failed (last: %v); direct %d", viaBaton, rounds, lastB, direct)
	}
}
