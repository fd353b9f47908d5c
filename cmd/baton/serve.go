package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/proxy/pgproxy"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

func cmdCheckConfig(args []string) error {
	fs := flag.NewFlagSet("check-config", flag.ExitOnError)
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: baton check-config FILE")
	}
	cfg, err := topology.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	for _, cl := range cfg.Clusters {
		fmt.Printf("%s: cluster %s (%s) on %s, %d nodes, %d users: ok\n", cfg.File, cl.Name, cl.Engine, cl.Listen, len(cl.Nodes), len(cl.Users))
	}
	return nil
}

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	cfgPath := fs.String("config", "configs/postgres.yaml", "configuration file")
	fs.Parse(args)
	cfg, err := topology.Load(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	inst, err := startInstance(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down: no new clients; waiting for running transactions")
	return inst.shutdown()
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// instance is one running baton: a health checker and a server per cluster.
type instance struct {
	log     *slog.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	servers []*pgproxy.Server
	timeout time.Duration
}

func startInstance(parent context.Context, cfg *topology.Config, log *slog.Logger) (*instance, error) {
	ctx, cancel := context.WithCancel(parent)
	inst := &instance{log: log, cancel: cancel}
	for _, cl := range cfg.Clusters {
		if cl.Engine != topology.EnginePostgres {
			cancel()
			return nil, fmt.Errorf("cluster %s: engine %s is not supported yet", cl.Name, cl.Engine)
		}
		var tlsConf *tls.Config
		if cl.TLS.Enabled() {
			cert, err := tls.LoadX509KeyPair(cl.TLS.CertFile, cl.TLS.KeyFile)
			if err != nil {
				cancel()
				return nil, fmt.Errorf("cluster %s: tls: %w", cl.Name, err)
			}
			tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		live := &topology.Live{}
		chk := health.NewChecker(cl, live, health.NewPGProberFactory(cl), log)
		chk.Round(ctx)
		classifier := router.NewPGClassifier(nil, cl.Limits.StatementCacheSize)
		srv := pgproxy.NewServer(cl, live, classifier, tlsConf, log)
		if err := srv.Listen(); err != nil {
			cancel()
			return nil, err
		}
		inst.servers = append(inst.servers, srv)
		if cl.Limits.ShutdownTimeout.D() > inst.timeout {
			inst.timeout = cl.Limits.ShutdownTimeout.D()
		}
		inst.wg.Add(3)
		go func() { defer inst.wg.Done(); chk.Run(ctx) }()
		go func() { defer inst.wg.Done(); pgproxy.KeepCatalog(ctx, cl, live, chk.Changed, classifier, log) }()
		go func() {
			defer inst.wg.Done()
			if err := srv.Serve(); err != nil {
				log.Error("listener stopped", "cluster", cl.Name, "error", err)
			}
		}()
		snap := live.Load()
		primary := "none"
		if p := snap.PrimaryNode(); p != nil {
			primary = p.Name
		}
		log.Info("serving", "cluster", cl.Name, "engine", cl.Engine, "listen", srv.Addr().String(), "primary", primary, "readable_replicas", len(snap.Readable))
	}
	return inst, nil
}

func (inst *instance) shutdown() error { return inst.shutdownWithin(inst.timeout) }

// shutdownWithin drains every server, giving running transactions up to d to finish.
func (inst *instance) shutdownWithin(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range inst.servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.Shutdown(ctx) }()
	}
	wg.Wait()
	inst.cancel()
	inst.wg.Wait()
	inst.log.Info("stopped")
	return nil
}
