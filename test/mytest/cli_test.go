package mytest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const mariadbCLI = "/usr/bin/mariadb"

// runCLI runs the mariadb command-line client through baton in batch mode with -e sql and
// returns its stdout, stderr and exit code.
func runCLI(t *testing.T, sql string) (stdout, stderr string, code int) {
	t.Helper()
	host, port, err := net.SplitHostPort(baton.Inst.Clusters()[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mariadbCLI, "--no-defaults", "--protocol=TCP", "-h", host, "-P", port,
		"-u", my.Opts.AppUser, "-p"+my.Opts.AppPassword, "--batch", "--skip-column-names", "-e", sql, my.Opts.AppDB)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running %s: %v (install mariadb-client)", mariadbCLI, err)
	}
	return o.String(), e.String(), code
}

func cliPort(t *testing.T, line string) int {
	t.Helper()
	p, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("expected a port, got %q", line)
	}
	return p
}

func TestCLI(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		out, errOut, code := runCLI(t, "SELECT @@port")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		wantReplica(t, "mariadb -e 'SELECT @@port'", cliPort(t, out))
	})
	t.Run("write-and-read", func(t *testing.T) {
		tbl := unique("cli")
		mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, who INT)")
		out, errOut, code := runCLI(t, "INSERT INTO "+tbl+" VALUES (1, @@port); SELECT @@port; SELECT 'done'")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || lines[1] != "done" {
			t.Fatalf("output %q; want the read's port and 'done'", out)
		}
		wantReplica(t, "the read after the write in one -e", cliPort(t, lines[0]))
		var who int
		if err := open(t, "").QueryRowContext(ctxT(t), "/* baton:primary */ SELECT who FROM "+tbl+" WHERE id = 1").Scan(&who); err != nil {
			t.Fatal(err)
		}
		wantPrimary(t, "the CLI's INSERT", who)
	})
	t.Run("syntax-error", func(t *testing.T) {
		out, errOut, code := runCLI(t, "SELEC 1")
		if code == 0 {
			t.Fatalf("a syntax error exited 0 (stdout %q)", out)
		}
		if !strings.Contains(errOut, "ERROR 1064 (42000)") || !strings.Contains(errOut, "You have an error in your SQL syntax") ||
			!strings.Contains(errOut, "'SELEC 1'") {
			t.Fatalf("stderr %q; want the server's ERROR 1064 (42000) text", errOut)
		}
	})
	t.Run("multi-statement-error", func(t *testing.T) {
		// The client stops at the first error; what came before ran.
		out, errOut, code := runCLI(t, "SELECT 'first'; SELECT * FROM no_such_table_cli; SELECT 'never'")
		if code == 0 || strings.Contains(out, "never") || !strings.Contains(out, "first") {
			t.Fatalf("exit %d, stdout %q", code, out)
		}
		if !strings.Contains(errOut, "ERROR 1146 (42S02)") || !strings.Contains(errOut, "no_such_table_cli' doesn't exist") {
			t.Fatalf("stderr %q; want ERROR 1146", errOut)
		}
	})
}
