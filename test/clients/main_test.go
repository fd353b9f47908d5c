package clients

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

var (
	pg      *cluster.PGCluster
	pgBaton *batontest.Baton // the default pool mode (transaction)
	// pgBatonSession serves the same cluster in pool_mode session: every PostgreSQL scenario
	// runs through both and is compared with the direct run each time.
	pgBatonSession *batontest.Baton
	my             *cluster.MyCluster
	myBaton        *batontest.Baton // the default pool mode (transaction)
	myBatonSession *batontest.Baton // the same cluster in pool_mode session
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

// run starts both clusters at once (they are independent, and starting them in parallel halves
// the suite's set-up time), then baton in front of each.
func run(m *testing.M) int {
	if os.Getenv("BATON_TEST_LOG") == "" {
		// baton's start-up warnings (limited probes of the app monitor user) are not this
		// suite's subject; BATON_TEST_LOG=debug shows everything.
		os.Setenv("BATON_TEST_LOG", "error")
	}
	if _, err := cluster.PGBinDir(); err != nil {
		fmt.Fprintf(os.Stderr, "PostgreSQL is required by these tests (apt-get install -y postgresql-15, or test/scripts/deps.sh test): %v\n", err)
		return 1
	}
	if _, err := cluster.MariaDBBinDir(); err != nil {
		fmt.Fprintf(os.Stderr, "MariaDB is required by these tests: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var pgErr, myErr error
	var wg sync.WaitGroup
	wg.Go(func() { pg, pgErr = cluster.StartPG(ctx, cluster.PGOptions{Fast: true}) })
	wg.Go(func() {
		my, myErr = cluster.StartMariaDB(ctx, cluster.MyOptions{Fast: true, Settings: []string{"max_allowed_packet = 64M"}})
	})
	wg.Wait()
	if pg != nil {
		defer pg.Stop()
	}
	if my != nil {
		defer my.Stop()
	}
	if err := errors.Join(pgErr, myErr); err != nil {
		fmt.Fprintf(os.Stderr, "start clusters: %v\n", err)
		return 1
	}
	// read_your_writes: a client that reads right after its own write in the same session must
	// see it through baton as it does directly (the default, eventual, would not promise that).
	ryw := func(c *topology.Cluster) { c.Consistency = topology.ReadYourWrites }
	pgCfg, err := batontest.PGConfig(pg, ryw)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if pgBaton, err = batontest.StartBaton(pgCfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pgBaton.Stop()
	sessCfg, err := batontest.PGConfig(pg, func(c *topology.Cluster) { ryw(c); c.PoolMode = topology.PoolSession })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if pgBatonSession, err = batontest.StartBaton(sessCfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pgBatonSession.Stop()
	myCfg, err := batontest.MyConfig(my, ryw)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if myBaton, err = batontest.StartBaton(myCfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer myBaton.Stop()
	mySessCfg, err := batontest.MyConfig(my, func(c *topology.Cluster) { ryw(c); c.PoolMode = topology.PoolSession })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if myBatonSession, err = batontest.StartBaton(mySessCfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer myBatonSession.Stop()
	code := m.Run()
	if code != 0 && os.Getenv("BATON_CLIENTS_LOGS") != "" {
		pg.DumpLogs(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
		my.DumpLogs(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	}
	cleanupTools()
	return code
}
