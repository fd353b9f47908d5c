package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPGInNetns: a primary and a replica, each in a namespace of its own, replicate over lane
// 0; a cut of the primary's lanes drops packets (a connect times out rather than being
// refused), and healing restores it.
func TestPGInNetns(t *testing.T) {
	RequireNetns(t)
	RequirePG(t)
	lab, err := NewNetLab(2, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close) // after the cluster's own cleanup has stopped the nodes
	c := StartPGForTest(t, PGOptions{Fast: true, Replicas: 1, Lab: lab})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.Primary.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.Primary.NS.Cut(); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = pgx.Connect(cctx, c.Primary.SuperURL())
	ccancel()
	if err == nil || cctx.Err() == nil {
		t.Fatalf("connect to a cut node: %v (want a timeout, not an answer or a refusal)", err)
	}
	if err := c.Primary.NS.Heal(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, c.Primary.SuperURL())
	if err != nil {
		t.Fatalf("after healing: %v", err)
	}
	conn.Close(ctx)
}
