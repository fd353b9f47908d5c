package topology

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EmbeddedEtcd is a single-member etcd server run inside baton (when the configuration names no
// etcd endpoints), with a client connected to it.
type EmbeddedEtcd struct {
	once   sync.Once
	server sync.Once
	etcd   *embed.Etcd
	Client *clientv3.Client
	URL    string // the client URL
}

// EtcdOptions configures StartEmbeddedEtcd.
type EtcdOptions struct {
	Dir       string // data directory
	ClientURL string // e.g. http://127.0.0.1:2379
	PeerURL   string // e.g. http://127.0.0.1:2380
	// NoFsync trades durability for speed: tests only.
	NoFsync bool
	// StartTimeout bounds the wait for the server to be ready (default 30s).
	StartTimeout time.Duration
}

// StartEmbeddedEtcd starts the server and returns once it serves clients.
func StartEmbeddedEtcd(o EtcdOptions) (*EmbeddedEtcd, error) {
	cu, err := url.Parse(o.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("etcd client URL: %w", err)
	}
	pu, err := url.Parse(o.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("etcd peer URL: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "baton"
	cfg.Dir = o.Dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = o.NoFsync
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop()) // baton logs its own view
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(o.StartTimeout):
		e.Close()
		return nil, errors.New("embedded etcd did not become ready in time")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{o.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.Close()
		return nil, err
	}
	return &EmbeddedEtcd{etcd: e, Client: cli, URL: o.ClientURL}, nil
}

// Close stops the client and the server. Idempotent.
func (e *EmbeddedEtcd) Close() {
	e.once.Do(func() {
		e.Client.Close()
		e.stopServer()
	})
}

// stopServer stops only the server (tests: an instance cut off etcd). Idempotent.
func (e *EmbeddedEtcd) stopServer() { e.server.Do(func() { e.etcd.Close() }) }

// Ping reports whether etcd answers within ctx.
func Ping(ctx context.Context, cli *clientv3.Client) error {
	_, err := cli.Get(ctx, "baton-ping", clientv3.WithCountOnly())
	return err
}
