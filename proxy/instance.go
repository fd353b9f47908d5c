package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/failover"
	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/proxy/buffer"
	"github.com/baton-proxy/baton/proxy/myproxy"
	"github.com/baton-proxy/baton/proxy/pgproxy"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// Instance is one running baton: a checker and a server per cluster.
type Instance struct {
	log      *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	clusters []*Cluster
	timeout  time.Duration
	shared   *shared // etcd; nil when etcd is off
}

// Store is this instance's etcd session (nil when etcd.off).
func (inst *Instance) Store() *topology.Store {
	if inst.shared == nil {
		return nil
	}
	return inst.shared.store
}

// EtcdURLs are the client URLs of the etcd in use (the embedded server's, or the endpoints).
func (inst *Instance) EtcdURLs() []string {
	if inst.shared == nil {
		return nil
	}
	return inst.shared.urls
}

// Cluster is the running part of one configured cluster.
type Cluster struct {
	// Config is the configuration the cluster started with; current() the one in force.
	Config  *topology.Cluster
	Live    *topology.Live
	Checker *health.Checker
	PG      *pgproxy.Server // set for engine postgres
	My      *myproxy.Server // set for engine mysql

	cfg     atomic.Pointer[topology.Cluster] // the configuration in force (swapped by Reload)
	manager *failover.Manager
}

// current is the configuration in force.
func (c *Cluster) current() *topology.Cluster { return c.cfg.Load() }

// State is the shared state the cluster obeys (ok false without etcd or before the first one).
func (c *Cluster) State() (topology.ClusterState, bool) { return c.Checker.State() }

// Addr is the address the cluster's listener is bound to.
func (c *Cluster) Addr() net.Addr {
	if c.My != nil {
		return c.My.Addr()
	}
	return c.PG.Addr()
}

// server is what both engines' servers offer the instance.
type server interface {
	Listen() error
	Serve() error
	Addr() net.Addr
	Shutdown(context.Context) error
	TxOn(node string) int
	CutNode(node string) int
	Buffer() *buffer.Buffer
}

// Buffer is the cluster's failover buffer.
func (c *Cluster) Buffer() *buffer.Buffer { return c.server().Buffer() }

func (c *Cluster) server() server {
	if c.My != nil {
		return c.My
	}
	return c.PG
}

// Start starts every cluster of cfg: it probes the nodes once, binds the listeners and serves in
// the background until Shutdown.
func Start(parent context.Context, cfg *topology.Config, log *slog.Logger) (*Instance, error) {
	ctx, cancel := context.WithCancel(parent)
	inst := &Instance{log: log, cancel: cancel}
	if !cfg.Etcd.Off {
		sh, err := startShared(ctx, cfg.Etcd)
		if err != nil {
			cancel()
			return nil, err
		}
		inst.shared = sh
		log.Info("etcd session", "instance", sh.store.Instance(), "etcd", sh.urls, "embedded", sh.embedded != nil)
	}
	for _, cl := range cfg.Clusters {
		c, err := inst.startCluster(ctx, cl)
		if err != nil {
			inst.Shutdown(time.Second)
			return nil, err
		}
		inst.clusters = append(inst.clusters, c)
	}
	return inst, nil
}

func (inst *Instance) startCluster(ctx context.Context, cl *topology.Cluster) (*Cluster, error) {
	var tlsConf *tls.Config
	if cl.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cl.TLS.CertFile, cl.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: tls: %w", cl.Name, err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	live := &topology.Live{}
	c := &Cluster{Config: cl, Live: live}
	c.cfg.Store(cl)
	var loops []func()
	switch cl.Engine {
	case topology.EnginePostgres:
		c.Checker = health.NewChecker(cl, live, health.NewPGProberFactory(cl), inst.log)
		classifier := router.NewPGClassifier(nil, cl.Limits.StatementCacheSize)
		c.PG = pgproxy.NewServer(cl, live, classifier, tlsConf, inst.log)
		loops = append(loops, func() { pgproxy.KeepCatalog(ctx, cl, live, c.Checker.Changed, c.PG.DDL(), classifier, inst.log) })
	case topology.EngineMySQL:
		c.Checker = health.NewChecker(cl, live, health.NewMyProberFactory(cl), inst.log)
		srv, err := myproxy.NewServer(cl, live, router.NewMyClassifier(cl.Limits.StatementCacheSize), tlsConf, inst.log)
		if err != nil {
			return nil, err
		}
		c.My = srv
	default:
		return nil, fmt.Errorf("cluster %s: engine %s is not supported", cl.Name, cl.Engine)
	}
	if inst.shared != nil {
		store := inst.shared.store
		// Registered before anything is served: a failover of this cluster waits for this
		// instance's acknowledgement from now on (and only for its members').
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := store.Serve(sctx, cl.Name)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cluster %s: etcd: registering as a member: %w", cl.Name, err)
		}
		c.Checker.OnObserve(func(ctx context.Context, node string, up bool) error {
			return store.Observe(ctx, cl.Name, node, up)
		})
	}
	if inst.shared != nil {
		if c.PG != nil {
			c.PG.SetWriteGate(inst.shared.store.MayWrite)
		} else {
			c.My.SetWriteGate(inst.shared.store.MayWrite)
		}
	}
	c.Checker.Round(ctx)
	srv := c.server()
	// A statement that finds the primary refusing or dropping connections has the checker
	// confirm at once (strong evidence, DESIGN §3) instead of at its next probe round.
	srv.Buffer().OnNodeDown(c.Checker.Suspect)
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	if cl.Limits.ShutdownTimeout.D() > inst.timeout {
		inst.timeout = cl.Limits.ShutdownTimeout.D()
	}
	if inst.shared != nil {
		loops = append(loops, func() { inst.follow(ctx, c) }, func() { inst.coordinate(ctx, c, inst.log) })
	}
	loops = append(loops, func() { c.Checker.Run(ctx) }, func() {
		if err := srv.Serve(); err != nil {
			inst.log.Error("listener stopped", "cluster", cl.Name, "error", err)
		}
	})
	for _, f := range loops {
		inst.wg.Add(1)
		go func() { defer inst.wg.Done(); f() }()
	}
	snap := live.Load()
	primary := "none"
	if p := snap.PrimaryNode(); p != nil {
		primary = p.Name
	}
	inst.log.Info("serving", "cluster", cl.Name, "engine", string(cl.Engine), "listen", srv.Addr().String(),
		"primary", primary, "readable_replicas", len(snap.Readable))
	return c, nil
}

// Clusters returns the running clusters in configuration order.
func (inst *Instance) Clusters() []*Cluster { return inst.clusters }

// ShutdownTimeout is the largest configured shutdown_timeout.
func (inst *Instance) ShutdownTimeout() time.Duration { return inst.timeout }

// Shutdown drains every server (running transactions get up to d to finish), then stops the
// background loops. It returns when everything has exited.
func (inst *Instance) Shutdown(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range inst.clusters {
		wg.Add(1)
		go func() { defer wg.Done(); c.server().Shutdown(ctx) }()
	}
	wg.Wait()
	inst.cancel()
	done := make(chan struct{})
	go func() { inst.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		// A loop is stuck in an etcd call that does not honour cancellation (an election's
		// resign when etcd is unreachable): closing the client ends it.
		if inst.shared != nil {
			inst.shared.close()
		}
		<-done
	}
	if inst.shared != nil {
		inst.shared.close() // revokes the lease: this instance's keys vanish at once
	}
}
