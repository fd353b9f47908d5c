package etcdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/baton-proxy/baton/test/cluster"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Options configures Start. The zero value is what tests want.
type Options struct {
	// Dir holds the members' data directories and logs. Default: a new temporary directory,
	// removed by Stop.
	Dir string
	// Binary is the etcd server to run. Default: [Binary].
	Binary string
	// HeartbeatInterval and ElectionTimeout are raft's timings. Defaults 50 ms and 500 ms (etcd's
	// own are 100 ms and 1 s): a lost leader is replaced within about a second.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// Fsync keeps etcd's fsyncs. Default off (--unsafe-no-fsync): killing a process loses
	// nothing the kernel has, and tests never crash the kernel.
	Fsync bool
	// Netns, if set, runs every member in that network namespace (partition tests): members
	// talk to each other on the namespace's loopback and serve clients on all its addresses;
	// Endpoints are on lane 0, LaneEndpoints on the others.
	Netns *cluster.Netns
}

// Cluster is a running n-member etcd cluster on loopback. Its members keep their URLs and data
// directories across restarts.
//
// Safe for concurrent use.
type Cluster struct {
	opts    Options
	bin     string
	dir     string
	ownDir  bool // dir was created by Start and is removed by Stop
	token   string
	members []*Member
}

// Start starts an n-member cluster and returns once every member is healthy. The ports are
// free loopback ports; should another process take one before etcd binds it, the whole start is
// retried with new ports (up to three times). On failure nothing is left running.
func Start(ctx context.Context, n int, o Options) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("etcdtest: %d members", n)
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 50 * time.Millisecond
	}
	if o.ElectionTimeout <= 0 {
		o.ElectionTimeout = 500 * time.Millisecond
	}
	if o.Binary == "" {
		bin, err := Binary(ctx)
		if err != nil {
			return nil, err
		}
		o.Binary = bin
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var c *Cluster
		c, err = start(ctx, n, o, attempt)
		if err == nil {
			return c, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

// start is one attempt of Start.
func start(ctx context.Context, n int, o Options, attempt int) (_ *Cluster, err error) {
	c := &Cluster{opts: o, bin: o.Binary, dir: o.Dir}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "baton-etcdtest-")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		c.dir, c.ownDir = d, true
	} else {
		c.dir = filepath.Join(c.dir, fmt.Sprintf("etcd-%d", attempt))
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
	}
	var r [6]byte
	rand.Read(r[:])
	c.token = "baton-etcdtest-" + hex.EncodeToString(r[:])
	ports, err := freePorts(2 * n)
	if err != nil {
		c.removeDir()
		return nil, err
	}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		host := "127.0.0.1"
		if o.Netns != nil {
			host = o.Netns.IP(0)
		}
		c.members = append(c.members, &Member{
			c:         c,
			name:      name,
			port:      ports[2*i],
			clientURL: fmt.Sprintf("http://%s:%d", host, ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			dataDir:   filepath.Join(c.dir, name),
			logPath:   logPathFor(c.dir, name),
		})
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.tails(30))
			c.Stop()
		}
	}()
	for _, m := range c.members {
		if err := m.launch(); err != nil {
			return nil, err
		}
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// freePorts returns k distinct free loopback ports, chosen outside the ephemeral range (see
// [cluster.FreePort]): a member restarted on its ports must not find one taken by the local end
// of an unrelated outgoing connection.
func freePorts(k int) ([]int, error) {
	ports := make([]int, 0, k)
	for range k {
		p, err := cluster.FreePort()
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

func (c *Cluster) initialCluster() string {
	parts := make([]string, len(c.members))
	for i, m := range c.members {
		parts[i] = m.name + "=" + m.peerURL
	}
	return strings.Join(parts, ",")
}

// Endpoints are the members' client URLs, in member order (for clientv3.Config.Endpoints or
// etcd.endpoints in baton's configuration).
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientURL
	}
	return out
}

// LaneEndpoints are the members' client URLs on a lane of Options.Netns (Endpoints without
// one).
func (c *Cluster) LaneEndpoints(lane int) []string {
	if c.opts.Netns == nil {
		return c.Endpoints()
	}
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = fmt.Sprintf("http://%s:%d", c.opts.Netns.IP(lane), m.port)
	}
	return out
}

// Member returns member i (0-based).
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Members returns every member in order.
func (c *Cluster) Members() []*Member { return append([]*Member(nil), c.members...) }

// Dir is the directory holding the members' data directories and logs.
func (c *Cluster) Dir() string { return c.dir }

// Restart launches the given members (killed or stopped before) all at once, then waits until
// each of them is healthy: the way to restore a lost quorum, where no member is healthy alone.
func (c *Cluster) Restart(ctx context.Context, members ...int) error {
	for _, i := range members {
		if err := c.members[i].launch(); err != nil {
			return err
		}
	}
	for _, i := range members {
		if err := c.members[i].WaitHealthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

// WaitHealthy waits until every member is running and healthy.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	for _, m := range c.members {
		if !m.Running() {
			return fmt.Errorf("etcdtest: member %s is not running", m.name)
		}
		if err := m.WaitHealthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Client returns a new client of every member (with a no-op logger); the caller closes it.
func (c *Cluster) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// Leader returns the index of the member the running members agree is the leader, or -1 when
// they do not agree on one (yet).
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	cli, err := c.Client()
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	var leader uint64
	byID := map[uint64]int{}
	for i, m := range c.members {
		if !m.Running() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, m.clientURL)
		cancel()
		if err != nil {
			return -1, fmt.Errorf("etcdtest: status of %s: %w", m.name, err)
		}
		byID[st.Header.MemberId] = i
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return -1, nil
		}
		leader = st.Leader
	}
	if i, ok := byID[leader]; ok {
		return i, nil
	}
	return -1, nil
}

// Stop kills every running member and returns once all have exited; when Start created the
// directory, it removes it. The cluster's data is thrown away, so there is nothing to shut down
// gracefully: stopping three members with SIGTERM at once takes etcd about 6 s (each waits for
// peers that are leaving too), SIGKILL a few milliseconds. Idempotent.
func (c *Cluster) Stop() error {
	var errs []error
	for _, m := range c.members {
		if err := m.Kill(); err != nil && !errors.Is(err, ErrNotRunning) {
			errs = append(errs, err)
		}
	}
	c.removeDir()
	return errors.Join(errs...)
}

func (c *Cluster) removeDir() {
	if c.ownDir {
		os.RemoveAll(c.dir)
	}
}

// DumpLogs passes a short digest of every member's log to logf: its path, and the last lines
// that are warnings or errors, the harness's own markers or not JSON at all. The full logs stay
// in the files; a failing test's own message must not drown under hundreds of info lines.
func (c *Cluster) DumpLogs(logf func(format string, args ...any)) {
	for _, m := range c.members {
		logf("--- etcd member %s, log %s; its last warnings and errors:\n%s", m.name, m.logPath, m.Digest(12))
	}
}

func (c *Cluster) tails(n int) string {
	var b strings.Builder
	for _, m := range c.members {
		fmt.Fprintf(&b, "--- tail of etcd member %s ---\n%s\n", m.name, m.Tail(n))
	}
	return b.String()
}
