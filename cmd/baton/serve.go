package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/proxy/admin"
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
	inst, err := proxy.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	adm := admin.New(inst, cfg.Admin, log)
	if cfg.Admin.Enabled() {
		if err := adm.Start(); err != nil {
			inst.Shutdown(inst.ShutdownTimeout())
			return err
		}
	}
	<-ctx.Done()
	log.Info("shutting down: no new clients; waiting for running transactions", "timeout", inst.ShutdownTimeout())
	adm.MarkDraining()
	inst.Shutdown(inst.ShutdownTimeout())
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	adm.Shutdown(actx)
	log.Info("stopped")
	return nil
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
