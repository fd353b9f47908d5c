package etcdtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning is returned by the signalling methods of a member whose process is not running.
var ErrNotRunning = errors.New("etcdtest: member is not running")

// stopTimeout bounds a graceful stop; the process is then killed.
const stopTimeout = 10 * time.Second

// Member is one etcd member of a Cluster: a separate process with its own data directory, log
// file, client URL and peer URL (both kept across restarts).
//
// Safe for concurrent use; signalling methods act on the process running at the time.
type Member struct {
	c         *Cluster
	name      string
	port      int // client port
	clientURL string
	peerURL   string
	dataDir   string
	logPath   string

	mu      sync.Mutex
	proc    *process // nil while not running
	started bool     // launched at least once: later launches join an existing cluster
}

// process is one run of a member.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited closes
}

// Name is the member's etcd name (m0, m1, …).
func (m *Member) Name() string { return m.name }

// ClientURL is the member's client URL (http://127.0.0.1:port).
func (m *Member) ClientURL() string { return m.clientURL }

// PeerURL is the member's peer URL.
func (m *Member) PeerURL() string { return m.peerURL }

// DataDir is the member's data directory.
func (m *Member) DataDir() string { return m.dataDir }

// LogPath is the member's log file (every run appends to it).
func (m *Member) LogPath() string { return m.logPath }

// PID is the running process's id, 0 when not running.
func (m *Member) PID() int {
	if p := m.running(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Running reports whether the member's process is running (possibly paused).
func (m *Member) Running() bool { return m.running() != nil }

// running returns the current process if it has not exited.
func (m *Member) running() *process {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
		return p
	}
}

// launch starts the member's process without waiting for it to be ready. The first launch
// bootstraps (--initial-cluster-state new), later ones rejoin with the same data directory.
func (m *Member) launch() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		select {
		case <-m.proc.exited:
		default:
			return fmt.Errorf("etcdtest: member %s is already running", m.name)
		}
	}
	state := "new"
	if m.started {
		state = "existing"
	}
	o := m.c.opts
	args := []string{
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.listenClientURL(),
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", m.c.initialCluster(),
		"--initial-cluster-state", state,
		"--initial-cluster-token", m.c.token,
		"--heartbeat-interval", strconv.FormatInt(o.HeartbeatInterval.Milliseconds(), 10),
		"--election-timeout", strconv.FormatInt(o.ElectionTimeout.Milliseconds(), 10),
		"--log-level", "info",
	}
	if !o.Fsync {
		args = append(args, "--unsafe-no-fsync")
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "=== etcdtest: %s starting %s (%s) ===\n", time.Now().Format(time.RFC3339Nano), m.name, state)
	argv := append([]string{m.c.bin}, args...)
	if ns := m.c.opts.Netns; ns != nil {
		argv = ns.Command(argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcdtest: starting %s: %w", m.name, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { // owned by the member: Kill and Stop wait for it
		p.err = cmd.Wait()
		close(p.exited)
	}()
	m.proc, m.started = p, true
	return nil
}

// Start restarts a member that was killed or stopped, with the same data directory and URLs
// (--initial-cluster-state existing), and waits until it is healthy. A member is healthy only
// when the cluster has a leader, so this needs a quorum counting this member; to bring back
// several members of a cluster that lost its quorum, use [Cluster.Restart].
func (m *Member) Start(ctx context.Context) error {
	if err := m.launch(); err != nil {
		return err
	}
	return m.WaitHealthy(ctx)
}

// WaitHealthy polls the member's /health endpoint until it reports healthy (the member runs,
// has a leader and serves a quorum read) or ctx ends. It fails at once if the process exits.
func (m *Member) WaitHealthy(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		p := m.current()
		if p == nil {
			return fmt.Errorf("etcdtest: member %s was never started", m.name)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("etcdtest: member %s exited (%v); log tail:\n%s", m.name, p.err, m.Tail(20))
		default:
		}
		if last = m.Healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdtest: member %s not healthy: %w (last: %v)", m.name, ctx.Err(), last)
		case <-t.C:
		}
	}
}

func (m *Member) current() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// healthClient is shared by all health checks; one check never waits more than a second.
var healthClient = &http.Client{Timeout: time.Second}

// Healthy asks the member's /health endpoint once; nil means healthy.
func (m *Member) Healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("/health: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || h.Health != "true" {
		return fmt.Errorf("/health: %s %q", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// signal sends sig to the running process.
func (m *Member) signal(sig syscall.Signal) (*process, error) {
	p := m.running()
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotRunning, m.name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("etcdtest: %s: %w", m.name, err)
	}
	return p, nil
}

// Kill sends SIGKILL and returns once the process has exited.
func (m *Member) Kill() error {
	p, err := m.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	<-p.exited
	return nil
}

// Stop sends SIGTERM (and SIGCONT, should the member be paused) and returns once the process
// has exited; after 10 s it is killed.
func (m *Member) Stop() error {
	p, err := m.signal(syscall.SIGTERM)
	if err != nil {
		return err
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("etcdtest: %s ignored SIGTERM for %v and was killed", m.name, stopTimeout)
	}
}

// Pause freezes the process (SIGSTOP): its sockets stay open but nothing answers, as with a
// hung machine. Resume undoes it.
func (m *Member) Pause() error {
	_, err := m.signal(syscall.SIGSTOP)
	return err
}

// Resume continues a paused process (SIGCONT).
func (m *Member) Resume() error {
	_, err := m.signal(syscall.SIGCONT)
	return err
}

// Tail returns the last n lines of the member's log.
func (m *Member) Tail(n int) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Digest returns the member log's last n lines that matter when a test fails: warnings, errors,
// the harness's start markers and anything that is not a JSON log line (a crash's stack trace).
func (m *Member) Digest(n int) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "{") || !strings.Contains(l, `"level":"info"`) && !strings.Contains(l, `"level":"debug"`) {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// logPathFor is where member name logs inside dir.
func logPathFor(dir, name string) string { return filepath.Join(dir, name+".log") }

// listenClientURL is the client URL, or every address of the member's namespace.
func (m *Member) listenClientURL() string {
	if m.c.opts.Netns != nil {
		return fmt.Sprintf("http://0.0.0.0:%d", m.port)
	}
	return m.clientURL
}
