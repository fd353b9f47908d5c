package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	pollInterval   = 50 * time.Millisecond // readiness and replication polling
	stopTimeout    = 60 * time.Second      // fast shutdown before falling back to SIGKILL
	orphanTimeout  = 10 * time.Second      // backends of a killed postmaster exit by themselves
	connectTimeout = 2 * time.Second       // one readiness probe
)

// PGNode is one PostgreSQL server of a PGCluster. Name, Port and DataDir
// do not change after StartPG returns. Start, Stop and Kill may be called
// from any goroutine; they are serialized.
type PGNode struct {
	Name    string // "primary", "replica1", ...
	Port    int    // TCP port on 127.0.0.1 (in a namespace: on every address of NS)
	DataDir string // PGDATA; also holds the unix socket
	// NS is the node's network namespace (PGOptions.Lab), nil when it runs
	// in the caller's.
	NS *Netns
	// TLS: the node runs ssl = on (PGOptions.NoTLS, NoTLSNodes).
	TLS bool

	c   *PGCluster
	env *runEnv

	opMu sync.Mutex // serializes Start, Stop and Kill; held while they block
	mu   sync.Mutex // guards proc
	proc *process   // nil: not started by us, or stopped
}

// process is one run of a postmaster; its wait goroutine closes done.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid after done is closed
}

// exited reports whether the process has been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Addr returns "127.0.0.1:PORT" (in a namespace: its lane 0 address).
func (n *PGNode) Addr() string { return net.JoinHostPort(n.host(), strconv.Itoa(n.Port)) }

// LaneAddr returns the node's address on a lane of its namespace (Addr
// when it has none).
func (n *PGNode) LaneAddr(lane int) string {
	if n.NS == nil {
		return n.Addr()
	}
	return net.JoinHostPort(n.NS.IP(lane), strconv.Itoa(n.Port))
}

func (n *PGNode) host() string {
	if n.NS != nil {
		return n.NS.IP(0)
	}
	return "127.0.0.1"
}

// SuperURL returns a URL connecting as the superuser "postgres" to AppDB.
func (n *PGNode) SuperURL() string {
	return n.url("postgres", n.c.Opts.Password, n.c.Opts.AppDB)
}

// AppURL returns a URL connecting as AppUser to AppDB.
func (n *PGNode) AppURL() string {
	return n.url(n.c.Opts.AppUser, n.c.Opts.AppPassword, n.c.Opts.AppDB)
}

func (n *PGNode) url(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     n.Addr(),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// LogPath returns the server log file, <BaseDir>/<Name>.log.
func (n *PGNode) LogPath() string { return filepath.Join(filepath.Dir(n.DataDir), n.Name+".log") }

// LogTail returns at most the last maxBytes of the server log, starting at
// a line boundary; "" if there is no log.
func (n *PGNode) LogTail(maxBytes int) string {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	return readTail(f, maxBytes)
}

func readTail(f *os.File, maxBytes int) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-int64(maxBytes), 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if off > 0 {
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// PID returns the postmaster's process id, or 0 when it is not running.
func (n *PGNode) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// Running reports whether the postmaster process is alive.
func (n *PGNode) Running() bool { return n.PID() != 0 }

// Start starts the postmaster and waits until it accepts connections (a
// replica: until it reached a consistent state). It fails if the node is
// already running.
func (n *PGNode) Start(ctx context.Context) error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	return n.startLocked(ctx)
}

// ErrPortInUse reports that a postmaster could not bind its port because
// another process holds it.
var ErrPortInUse = errors.New("cluster: port in use")

func (n *PGNode) startLocked(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("cluster: node %s is already running (pid %d)", n.Name, n.PID())
	}
	log, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	fi, err := log.Stat()
	if err != nil {
		log.Close()
		return fmt.Errorf("cluster: %w", err)
	}
	logStart := fi.Size()
	cmd := n.env.command(context.Background(), n.DataDir, "postgres", "-D", n.DataDir)
	if n.NS != nil {
		n.env.inNetns(cmd, n.NS)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("cluster: start %s: %w", n.Name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { // owned by the node: Stop and Kill wait for done
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	n.env.logf("cluster: %s: postmaster pid %d on %s", n.Name, cmd.Process.Pid, n.Addr())

	err = n.waitReady(ctx, p)
	if err == nil {
		return nil
	}
	_ = n.stopProcess(p, modeKill)
	if strings.Contains(n.logSince(logStart), "could not bind") {
		return fmt.Errorf("%w: %s: %v", ErrPortInUse, n.Addr(), err)
	}
	return err
}

// logSince returns the log written since offset off.
func (n *PGNode) logSince(off int64) string {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, off, 1<<20))
	return string(b)
}

// waitReady polls until the server accepts a superuser connection.
func (n *PGNode) waitReady(ctx context.Context, p *process) error {
	cfg, err := pgx.ParseConfig(n.url("postgres", n.c.Opts.Password, "postgres"))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cfg.ConnectTimeout = connectTimeout
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	last := errors.New("postmaster.pid does not say ready yet")
	for {
		// Connecting before the postmaster says it is ready only fills the
		// log with "the database system is starting up".
		if n.pidFileReady(p.cmd.Process.Pid) {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err == nil {
				return conn.Close(ctx)
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s not ready: %w (last error: %v)", n.Name, ctx.Err(), last)
		case <-p.done:
			return fmt.Errorf("cluster: %s: postmaster exited during startup (%v); see %s",
				n.Name, p.err, n.LogPath())
		case <-t.C:
		}
	}
}

// pidFileReady reports whether postmaster.pid, written by the postmaster
// pid, has the status "ready" (primary) or "standby" (hot standby accepting
// read-only connections) on its 8th line, as pg_ctl -w checks.
func (n *PGNode) pidFileReady(pid int) bool {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(pid) {
		return false
	}
	status := strings.TrimSpace(lines[7])
	return status == "ready" || status == "standby"
}

// Stop shuts the node down ("fast" shutdown: SIGINT) and waits for the
// postmaster to exit; after a minute it falls back to SIGKILL. Stopping a
// node that is not running is not an error.
func (n *PGNode) Stop() error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	return n.stopProcess(p, modeFast)
}

// Kill sends SIGKILL to the postmaster, like a crash, and returns once the
// postmaster and its backends are gone, so that Start can follow at once
// (PostgreSQL refuses to start while old backends hold its shared memory).
// Killing a node that is not running is not an error.
func (n *PGNode) Kill() error {
	n.opMu.Lock()
	defer n.opMu.Unlock()
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	return n.stopProcess(p, modeKill)
}

type stopMode int

const (
	modeFast stopMode = iota // fast shutdown
	modeKill                 // crash
)

// stopProcess ends p and forgets it. Called with opMu held.
func (n *PGNode) stopProcess(p *process, mode stopMode) error {
	defer func() {
		n.mu.Lock()
		if n.proc == p {
			n.proc = nil
		}
		n.mu.Unlock()
	}()
	if p.exited() {
		return nil
	}
	pid := p.cmd.Process.Pid
	if mode == modeFast {
		n.env.logf("cluster: %s: fast shutdown of pid %d", n.Name, pid)
		if err := p.cmd.Process.Signal(os.Interrupt); err == nil {
			select {
			case <-p.done:
				return nil
			case <-time.After(stopTimeout):
			}
		}
		n.env.logf("cluster: %s: no fast shutdown within %v, killing", n.Name, stopTimeout)
	}
	kids := childPIDs(pid)
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		return fmt.Errorf("cluster: kill %s (pid %d): %w", n.Name, pid, err)
	}
	<-p.done
	n.env.logf("cluster: %s: killed pid %d", n.Name, pid)
	return waitGone(kids)
}

// waitGone waits for the orphaned backends of a killed postmaster, which
// exit when they notice its death, and kills those that take too long.
func waitGone(pids []int) error {
	deadline := time.Now().Add(orphanTimeout)
	for _, pid := range pids {
		killed := false
		for !pidGone(pid) {
			switch now := time.Now(); {
			case now.After(deadline.Add(orphanTimeout)):
				return fmt.Errorf("cluster: backend pid %d survived SIGKILL", pid)
			case !killed && now.After(deadline):
				killPID(pid)
				killed = true
			}
			time.Sleep(pollInterval)
		}
	}
	return nil
}
