package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
)

// ensureBaton builds the baton binary at path when it is missing or when
// rebuild is set. It runs "go build" in the current directory, which must be
// the repository root (as with "go run ./test/bench").
func ensureBaton(ctx context.Context, path string, rebuild bool) error {
	if _, err := os.Stat(path); err == nil && !rebuild {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, err := runTool(ctx, nil, "", "go", "build", "-o", abs, "./cmd/baton"); err != nil {
		return fmt.Errorf("build baton: %w", err)
	}
	return nil
}

// batonConfig is baton's YAML configuration for the benchmark: one cluster
// over the primary and the replicas, and the app user with SCRAM; the admin
// endpoint (metrics) on adminPort. Pools are PgBouncer-sized: pool.size 20
// per node, user and database (as PgBouncer's default_pool_size), with
// baton's default reserve (5 more after 3 s of queueing).
func batonConfig(e *benchEnv, port, adminPort int, consistency, poolMode string) string {
	cfg := fmt.Sprintf(`admin: {listen: "127.0.0.1:%d"}
clusters:
  - name: pg
    engine: postgres
    listen: 127.0.0.1:%d
    consistency: %s
    pool_mode: %s
    nodes:
      - {name: primary, address: 127.0.0.1:%d}
`, adminPort, port, consistency, poolMode, e.primary)
	for i, p := range e.replicas {
		cfg += fmt.Sprintf("      - {name: replica%d, address: 127.0.0.1:%d}\n", i+1, p)
	}
	cfg += `    users:
      - {name: app, password: app, auth: scram-sha-256}
    pool: {size: 20, max_per_node: 100}
    limits: {max_clients: 20000}
`
	return cfg
}

// startBaton starts "baton serve" and waits until it serves a login. The
// child inherits the benchmark's raised RLIMIT_NOFILE; a baton run outside
// this program needs the same (ulimit -n, or LimitNOFILE= under systemd) to
// hold thousands of clients. Failures are recorded in the target.
func startBaton(ctx context.Context, e *benchEnv, bin string, rebuild bool, name string) *target {
	t := &target{name: name}
	consistency, poolMode := "read_your_writes", "transaction" // baton's defaults
	switch name {
	case targetBatonEventual:
		consistency = "eventual"
	case targetBatonSession:
		poolMode = "session"
	}
	err := func() error {
		if err := ensureBaton(ctx, bin, rebuild); err != nil {
			return err
		}
		port, err := cluster.FreePort()
		if err != nil {
			return err
		}
		t.port = port
		if t.adminPort, err = cluster.FreePort(); err != nil {
			return err
		}
		dir := filepath.Join(e.root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		cfgPath := filepath.Join(dir, "baton.yaml")
		if err := writeFiles(dir, map[string]string{"baton.yaml": batonConfig(e, port, t.adminPort, consistency, poolMode)}); err != nil {
			return err
		}
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		c, err := startChild("baton", filepath.Join(dir, "baton.log"), syscall.SIGTERM,
			[]string{abs, "serve", "--config", cfgPath})
		if err != nil {
			return err
		}
		if err := waitReady(ctx, c, appConnString(port), 60*time.Second); err != nil {
			c.stop()
			return err
		}
		t.child = c
		return nil
	}()
	if err != nil {
		e.logf("baton: %v", err)
		t.unavailable = "error: " + firstLine(err.Error())
	}
	return t
}
