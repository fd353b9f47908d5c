// Package etcdtest starts real multi-member etcd clusters on loopback for baton's integration
// tests: n members, each a separate etcd process with its own data directory, client and peer
// port, so a test can kill, stop, pause and restart members and lose or restore the quorum.
//
// The etcd binary is the real server, built from the go.etcd.io/etcd/server/v3 version in
// baton's go.mod (go.mod names it as a tool, so `go mod tidy` keeps its dependencies). It is
// built once per machine and module version into os.UserCacheDir()/baton-test/ and reused by
// later runs; $BATON_ETCD_BIN names another binary instead. See [Binary].
//
// Members bootstrap statically (--initial-cluster) with short raft timings (heartbeat 50 ms,
// election timeout 500 ms) and --unsafe-no-fsync: a SIGKILLed process loses nothing the kernel
// already has, and tests do not crash the kernel. Each member logs to <dir>/<name>.log; a
// restarted member appends to the same file. Readiness is polled on the member's /health
// endpoint (which needs a leader, hence a quorum); there are no fixed sleeps. On Linux every
// member gets Pdeathsig=SIGKILL, so a crashing test binary leaves no etcd behind.
//
// Typical test:
//
//	func TestSomething(t *testing.T) {
//		c := etcdtest.StartForTest(t, 3)
//		cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints()})
//		...
//		c.Member(0).Kill()               // SIGKILL; the other two keep the quorum
//		c.Member(0).Start(ctx)           // same data dir, --initial-cluster-state existing
//		c.Member(1).Kill(); c.Member(2).Kill()     // quorum lost
//		c.Restart(ctx, 1, 2)             // both at once: neither is healthy alone
//	}
//
// etcd needs no special user: the harness works the same for root and an ordinary user.
package etcdtest
