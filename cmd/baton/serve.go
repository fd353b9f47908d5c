package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/proxy"
	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
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
	// Live configuration: the file is watched, and SIGHUP reloads it too. A file that does not
	// load, or that changes what only a restart can change, is refused; the running
	// configuration stays.
	reload := func(next *topology.Config) {
		if err := inst.Reload(next); err != nil {
			log.Error("configuration not reloaded", "error", err)
		}
	}
	loadErr := func(err error) { log.Error("configuration not reloaded", "error", err) }
	go topology.Watch(ctx, *cfgPath, reload, loadErr)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			if next, err := topology.Load(*cfgPath); err != nil {
				loadErr(err)
			} else {
				reload(next)
			}
		}
	}
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
	mysql.SetLogger(driverLog{log})
	return log
}

// driverLog passes go-sql-driver/mysql's own messages ("closing bad idle connection: EOF" when a
// fence or a restart ended a pooled connection) to the log at DEBUG: the callers see and handle
// the same errors, and would otherwise have them printed unformatted on stderr.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Print(v ...any) {
	d.log.Debug("mysql driver", "message", strings.TrimSpace(fmt.Sprint(v...)))
}
