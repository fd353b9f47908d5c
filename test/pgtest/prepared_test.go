package pgtest

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestNamedPreparedStatement(t *testing.T) {
	ctx := ctxT(t)
	tbl := createTable(t, "prep", "id int PRIMARY KEY, who int")
	c := connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := c.Prepare(ctx, "s1", "SELECT $1::int + 1, inet_server_port(), pg_is_in_recovery()"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+tbl+" VALUES ($1, inet_server_port())", 1); err != nil {
		t.Fatal(err)
	}
	var v, port int
	var rep bool
	if err := c.QueryRow(ctx, "s1", 41).Scan(&v, &port, &rep); err != nil {
		t.Fatalf("executing s1 after a write: %v", err)
	}
	if v != 42 {
		t.Fatalf("s1(41) = %d", v)
	}
	wantReplica(t, "s1 after a write", port, rep)

	// In a transaction it runs on the primary, prepared there on demand.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "s1", 1).Scan(&v, &port, &rep); err != nil {
		t.Fatalf("executing s1 in a transaction: %v", err)
	}
	if v != 2 {
		t.Fatalf("s1(1) = %d", v)
	}
	wantPrimary(t, "s1 in a transaction", port, rep)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "s1", 2).Scan(&v, &port, &rep); err != nil || v != 3 {
		t.Fatalf("s1(2) after the transaction = %d, %v", v, err)
	}
	wantReplica(t, "s1 after the transaction", port, rep)

	// Deallocate (protocol Close) and prepare the same name with other text: every node must
	// run the new text.
	if err := c.Deallocate(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "s1", "SELECT 'v2'::text, inet_server_port(), pg_is_in_recovery()"); err != nil {
		t.Fatalf("re-preparing s1: %v", err)
	}
	var s string
	if err := c.QueryRow(ctx, "s1").Scan(&s, &port, &rep); err != nil || s != "v2" {
		t.Fatalf("new s1 = %q, %v; want v2", s, err)
	}
	wantReplica(t, "the new s1", port, rep)
	tx, err = c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, "s1").Scan(&s, &port, &rep); err != nil || s != "v2" {
		t.Fatalf("new s1 in a transaction = %q, %v; want v2", s, err)
	}
	wantPrimary(t, "the new s1 in a transaction", port, rep)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSQLDeallocate(t *testing.T) {
	ctx := ctxT(t)
	c := connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := c.Prepare(ctx, "s2", "SELECT 1, inet_server_port(), pg_is_in_recovery()"); err != nil {
		t.Fatal(err)
	}
	var v, port int
	var rep bool
	if err := c.QueryRow(ctx, "s2").Scan(&v, &port, &rep); err != nil || v != 1 {
		t.Fatalf("s2 = %d, %v", v, err)
	}
	wantReplica(t, "s2", port, rep)
	// SQL DEALLOCATE drops a protocol-level prepared statement of the session, as on PostgreSQL.
	if _, err := c.Exec(ctx, "DEALLOCATE s2"); err != nil {
		t.Fatalf("DEALLOCATE s2: %v", err)
	}
	if _, err := c.Prepare(ctx, "s2", "SELECT 2, inet_server_port(), pg_is_in_recovery()"); err != nil {
		t.Fatalf("preparing s2 again after DEALLOCATE: %v", err)
	}
	if err := c.QueryRow(ctx, "s2").Scan(&v, &port, &rep); err != nil || v != 2 {
		t.Fatalf("new s2 = %d, %v; want 2", v, err)
	}
	wantReplica(t, "the new s2", port, rep)
}
