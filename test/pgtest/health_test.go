package pgtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestReplicaLossUnderReadLoad kills a replica while clients read through baton: no client sees
// an error (reads that hit the dying replica are resent before any byte reached the client), the
// dead node leaves the read set, and it rejoins by itself once it is back.
func TestReplicaLossUnderReadLoad(t *testing.T) {
	c := cluster.StartPGForTest(t, cluster.PGOptions{})
	b := batontest.StartPGBatonForTest(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, b.URL(c)+"&pool_max_conns=8")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	victim, survivor := c.Replicas[0], c.Replicas[1]
	var (
		stop      atomic.Bool
		reads     atomic.Int64
		mu        sync.Mutex
		errs      []error
		afterKill = map[int]int{} // port → reads that started after the dead node left the read set
		killedAt  atomic.Int64
		wg        sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				started := time.Now().UnixNano()
				var port int
				var rep bool
				err := pool.QueryRow(ctx, "SELECT inet_server_port(), pg_is_in_recovery()", pgx.QueryExecModeSimpleProtocol).Scan(&port, &rep)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if k := killedAt.Load(); k != 0 && started > k {
					afterKill[port]++
				}
				mu.Unlock()
				reads.Add(1)
			}
		}()
	}
	waitFor(t, ctx, "reads flowing", func() bool { return reads.Load() > 200 })
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	live := b.Inst.Clusters()[0].Live
	waitFor(t, ctx, "the killed replica leaves the read set", func() bool {
		s := live.Load()
		for _, i := range s.Readable {
			if s.Nodes[i].Address == victim.Addr() {
				return false
			}
		}
		return len(s.Readable) == 1
	})
	killedAt.Store(time.Now().UnixNano())
	n := reads.Load()
	waitFor(t, ctx, "reads after the loss", func() bool { return reads.Load() > n+200 })

	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the replica rejoins the read set", func() bool { return len(live.Load().Readable) == 2 })
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("%d client errors while a replica died; first: %v", len(errs), errs[0])
	}
	if afterKill[victim.Port] != 0 {
		t.Fatalf("%d reads went to the dead replica after it left the read set", afterKill[victim.Port])
	}
	if afterKill[survivor.Port] == 0 {
		t.Fatalf("no read reached the surviving replica after the loss: %v", afterKill)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
