package proxy

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// shared is the instance's link to etcd: the embedded server (when no endpoints are
// configured), the client and the instance's session.
type shared struct {
	embedded *topology.EmbeddedEtcd
	client   *clientv3.Client
	store    *topology.Store
	urls     []string
	tmpDir   string

	closeOnce sync.Once
}

func freeLoopbackURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "http://" + l.Addr().String(), nil
}

// startShared connects to etcd (starting the embedded server when needed) and opens the
// instance's session.
func startShared(ctx context.Context, cfg topology.Etcd) (*shared, error) {
	sh := &shared{}
	if len(cfg.Endpoints) == 0 {
		dir := cfg.DataDir
		if dir == "" {
			d, err := os.MkdirTemp("", "baton-etcd-")
			if err != nil {
				return nil, err
			}
			dir, sh.tmpDir = d, d
		}
		cu, err := freeLoopbackURL()
		if cfg.ListenClient != "" {
			cu, err = "http://"+cfg.ListenClient, nil
		}
		if err != nil {
			return nil, err
		}
		pu, err := freeLoopbackURL()
		if err != nil {
			return nil, err
		}
		e, err := topology.StartEmbeddedEtcd(topology.EtcdOptions{Dir: dir, ClientURL: cu, PeerURL: pu})
		if err != nil {
			sh.close()
			return nil, err
		}
		sh.embedded, sh.client, sh.urls = e, e.Client, []string{cu}
	} else {
		cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, err
		}
		sh.client, sh.urls = cli, cfg.Endpoints
	}
	instance := cfg.Instance
	if instance == "" {
		host, _ := os.Hostname()
		instance = host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	}
	ttl := int(math.Ceil(cfg.LeaseTTL.D().Seconds()))
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := topology.NewStore(sctx, sh.client, cfg.Prefix, instance, ttl)
	if err != nil {
		sh.close()
		return nil, fmt.Errorf("etcd: %w", err)
	}
	sh.store = st
	return sh, nil
}

func (sh *shared) close() { sh.closeOnce.Do(sh.doClose) }

func (sh *shared) doClose() {
	if sh.store != nil {
		sh.store.Close()
	}
	if sh.embedded != nil {
		sh.embedded.Close()
	} else if sh.client != nil {
		sh.client.Close()
	}
	if sh.tmpDir != "" {
		os.RemoveAll(sh.tmpDir)
	}
}
