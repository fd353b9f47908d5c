package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Every example configuration must load as it is.
func TestExampleConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	for _, f := range files {
		if _, err := topology.Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestDemo runs `baton demo` as a newcomer would: it becomes ready, serves reads from a replica
// and writes on the primary through baton, and stops everything on SIGTERM.
func TestDemo(t *testing.T) {
	cluster.RequirePG(t)
	bin := filepath.Join(t.TempDir(), "baton")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(bin, "demo", "--ready-file", ready, "--config", "../../configs/both.yaml", "--listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rd demoReady
	for {
		if b, err := os.ReadFile(ready); err == nil && json.Unmarshal(b, &rd) == nil && rd.Postgres != nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("demo exited before it was ready: %v", err)
		case <-ctx.Done():
			t.Fatal("demo not ready in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if len(rd.Postgres.Replicas) != 2 || rd.Postgres.Primary == "" || rd.MySQL == nil || len(rd.MySQL.Replicas) != 2 {
		t.Fatalf("ready file: %+v %+v", rd.Postgres, rd.MySQL)
	}
	my, err := sql.Open("mysql", rd.MySQL.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	var port int
	if err := my.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
		t.Fatalf("a MySQL read through the demo: %v", err)
	}
	for _, r := range rd.MySQL.Replicas {
		if strings.Contains(r, fmt.Sprintf(":%d)", port)) {
			port = 0
		}
	}
	if port != 0 {
		t.Fatalf("a MySQL read through the demo was not answered by a replica (%v)", rd.MySQL.Replicas)
	}
	c, err := pgx.Connect(ctx, rd.Postgres.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	var rep bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rep); err != nil || !rep {
		t.Fatalf("a read through the demo: replica=%v, %v", rep, err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE demo_t (x int)"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "INSERT INTO demo_t VALUES (1) RETURNING pg_is_in_recovery()").Scan(&rep); err != nil || rep {
		t.Fatalf("a write through the demo: replica=%v, %v", rep, err)
	}
	c.Close(ctx)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop on SIGTERM")
	}
	if _, err := os.Stat(ready); !os.IsNotExist(err) {
		t.Fatalf("ready file left behind: %v", err)
	}
	if _, err := pgx.Connect(context.Background(), rd.Postgres.Primary); err == nil {
		t.Fatal("the demo's primary still accepts connections after the demo stopped")
	}
}
