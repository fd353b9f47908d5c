package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// child is a server process started by the benchmark (baton or a peer proxy).
// It runs in its own process group, so a Ctrl-C on the terminal reaches only
// the benchmark, which then stops every child in order; Pdeathsig kills it if
// the benchmark itself dies abruptly.
//
// The wait goroutine started by startChild is owned by the child: stop
// returns only after it has exited.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal // the signal that makes this server shut down quickly

	done chan struct{} // closed once the process has been reaped
	err  error         // result of Wait; read only after done is closed
}

// startChild starts argv with its output in logPath.
func startChild(name, logPath string, stopSig syscall.Signal, argv []string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = filepath.Dir(logPath)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, stopSig: stopSig, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// pid is the process id of the server's main process.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exitErr reports why the process is gone, or nil while it still runs.
func (c *child) exitErr() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v): %s; log tail:\n%s", c.name, c.err, lastLine(c.logTail(1)), c.logTail(15))
	default:
		return nil
	}
}

// stop asks the server to shut down, kills its whole process group after a
// grace period, and waits until the main process has been reaped.
func (c *child) stop() {
	pgid := c.cmd.Process.Pid
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(c.stopSig)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
	// Also catches helpers (pgpool's children) that outlived the parent.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-c.done
}

// logTail returns the last n lines of the child's output.
func (c *child) logTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// waitReady polls until a PostgreSQL connection through the server succeeds:
// startup, authentication and ReadyForQuery. It fails early when the child
// exits or the server rejects the credentials, and after timeout otherwise.
func waitReady(ctx context.Context, c *child, connString string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if err := c.exitErr(); err != nil {
			return err
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgconn.Connect(attempt, connString)
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		last = err
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") {
			return fmt.Errorf("%s rejects the login: %w; log tail:\n%s", c.name, err, c.logTail(10))
		}
		select {
		case <-ctx.Done():
			if err := c.exitErr(); err != nil {
				return err
			}
			return fmt.Errorf("%s not ready after %v: %v; log tail:\n%s", c.name, timeout, last, c.logTail(10))
		case <-tick.C:
		}
	}
}

// runTool runs a short-lived command and returns its combined output; the
// error includes the output's tail.
func runTool(ctx context.Context, env []string, dir string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, lastLine(out.String()))
	}
	return out.String(), nil
}

// lastLine returns the last non-empty line of s, for one-line error cells.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// findBinary looks name up in PATH and in the sbin directories that a
// non-root PATH usually lacks. It returns "" when it is not installed.
func findBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
