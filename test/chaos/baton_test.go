package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/admin"
	"github.com/baton-proxy/baton/test/cluster"
)

// batonBin is the baton binary built once by TestMain.
var batonBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "baton-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	batonBin = filepath.Join(dir, "baton")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	goTool := "go"
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		goTool = p
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", batonBin, "github.com/baton-proxy/baton/cmd/baton")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: cannot build baton: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	printTimings()
	return code
}

// spec is what differs between the tests' configurations. Zero durations leave baton's
// defaults.
type spec struct {
	name, engine, auth, database string
	nodes                        []string // addresses, named <name>1, <name>2, ... in order
	user, password               string   // the application's account (also the monitor)
	adminUser, adminPassword     string   // failover.user
	replUser, replPassword       string   // MySQL/MariaDB failover.replication_user
	probeInterval, grace         time.Duration
	bufferWindow                 time.Duration
	endpoints                    []string // etcd
	prefix                       string   // etcd key prefix: one per baton pair
	leaseTTL                     time.Duration
}

// render writes the YAML configuration of one instance.
func (s spec) render(instance string, listen, adminListen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log_level: %s\n", logLevel())
	fmt.Fprintf(&b, "admin: {listen: \"127.0.0.1:%d\"}\n", adminListen)
	fmt.Fprintf(&b, "etcd:\n  endpoints: [%s]\n  instance: %s\n  prefix: %s\n", strings.Join(s.endpoints, ", "), instance, s.prefix)
	if s.leaseTTL > 0 {
		fmt.Fprintf(&b, "  lease_ttl: %s\n", s.leaseTTL)
	}
	fmt.Fprintf(&b, "clusters:\n  - name: %s\n    engine: %s\n    listen: \"127.0.0.1:%d\"\n    database: %s\n", s.name, s.engine, listen, s.database)
	if s.probeInterval > 0 {
		fmt.Fprintf(&b, "    probe_interval: %s\n", s.probeInterval)
	}
	b.WriteString("    nodes:\n")
	for i, a := range s.nodes {
		fmt.Fprintf(&b, "      - {name: %s%d, address: %q}\n", s.name, i+1, a)
	}
	fmt.Fprintf(&b, "    users:\n      - {name: %s, password: %q, auth: %s}\n", s.user, s.password, s.auth)
	fmt.Fprintf(&b, "      - {name: %s, password: %q, auth: %s}\n", s.adminUser, s.adminPassword, s.auth)
	// min_interval: the adoption of the first primary counts as a primary change, and the tests
	// fail over within seconds of it.
	fmt.Fprintf(&b, "    failover:\n      user: %s\n      min_interval: 1ms\n", s.adminUser)
	if s.grace > 0 {
		fmt.Fprintf(&b, "      grace: %s\n", s.grace)
	}
	if s.replUser != "" {
		fmt.Fprintf(&b, "      replication_user: %s\n      replication_password: %q\n", s.replUser, s.replPassword)
	}
	if s.bufferWindow > 0 {
		fmt.Fprintf(&b, "    buffer: {window: %s}\n", s.bufferWindow)
	}
	return b.String()
}

func logLevel() string {
	if v := os.Getenv("BATON_TEST_LOG"); v != "" {
		return v
	}
	return "info"
}

// baton is one baton subprocess.
type baton struct {
	name     string
	addr     string // client listener
	adminURL string
	logPath  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startBaton starts an instance named name serving s, and stops it when the test ends. A free
// port can be taken by another process before baton binds it; baton then exits at once, and
// the instance is started again on new ports.
func startBaton(t *testing.T, s spec, name string) *baton {
	t.Helper()
	for attempt := 1; ; attempt++ {
		b := startBatonOnce(t, s, name)
		if attempt == 5 || !b.lostPortRace() {
			return b
		}
		t.Logf("baton %s lost a race for its port; starting it again", name)
	}
}

// lostPortRace waits until b serves its admin API or exits, and reports whether it exited
// because an address was taken.
func (b *baton) lostPortRace() bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b.exited() {
			return strings.Contains(tail(b.logPath, 4000), "address already in use")
		}
		if resp, err := httpClient.Get(b.adminURL + "/healthz"); err == nil {
			resp.Body.Close()
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func startBatonOnce(t *testing.T, s spec, name string) *baton {
	t.Helper()
	port, err1 := cluster.FreePort()
	aport, err2 := cluster.FreePort()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(s.render(name, port, aport)), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &baton{name: name, addr: fmt.Sprintf("127.0.0.1:%d", port), adminURL: fmt.Sprintf("http://127.0.0.1:%d", aport),
		logPath: filepath.Join(dir, name+".log")}
	logf, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(batonBin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start baton %s: %v", name, err)
	}
	b.cmd, b.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(b.done)
	}()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() || os.Getenv("BATON_CHAOS_LOGS") != "" {
			t.Logf("--- tail of baton %s log ---\n%s", name, tail(b.logPath, 20000))
		}
	})
	return b
}

// kill sends SIGKILL and waits for the process to exit.
func (b *baton) kill() {
	b.cmd.Process.Kill()
	<-b.done
}

// stop shuts the instance down (SIGTERM, then SIGKILL after 10 s).
func (b *baton) stop() {
	select {
	case <-b.done:
		return
	default:
	}
	b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.kill()
	}
}

func (b *baton) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// status reads the instance's view of its (only) cluster.
func (b *baton) status() (admin.ClusterStatus, error) {
	resp, err := httpClient.Get(b.adminURL + "/api/v1/clusters")
	if err != nil {
		return admin.ClusterStatus{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return admin.ClusterStatus{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return admin.ClusterStatus{}, fmt.Errorf("GET /api/v1/clusters: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var r admin.ClustersResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return admin.ClusterStatus{}, err
	}
	if len(r.Clusters) != 1 {
		return admin.ClusterStatus{}, fmt.Errorf("%d clusters", len(r.Clusters))
	}
	return r.Clusters[0], nil
}

// waitStatus polls b's status until ok holds, failing the test after d.
func waitStatus(t *testing.T, b *baton, d time.Duration, what string, ok func(admin.ClusterStatus) bool) admin.ClusterStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, err := b.status()
		if err == nil && ok(st) {
			return st
		}
		if b.exited() {
			t.Fatalf("%s: baton %s exited", what, b.name)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached on baton %s within %v (status %s, error %v)", what, b.name, d, brief(st), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// brief renders the fields of a status the tests look at.
func brief(st admin.ClusterStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch=%d phase=%s primary=%q coordinator=%q readable=%d nodes=[", st.Epoch, st.Phase, st.Primary, st.Coordinator, st.ReadableReplicas)
	for _, n := range st.Nodes {
		fmt.Fprintf(&b, " %s:%s up=%v fenced=%v ro=%v", n.Name, n.Role, n.Up, n.Fenced, n.ReadOnly)
	}
	b.WriteString(" ]")
	return b.String()
}

// stableOn is the condition "stable, primary p, both replicas readable, a coordinator known".
func stableOn(p string, readable int) func(admin.ClusterStatus) bool {
	return func(st admin.ClusterStatus) bool {
		return st.Epoch >= 1 && st.Phase == "stable" && st.Primary == p && st.Coordinator != "" && st.ReadableReplicas >= readable
	}
}

// node returns the named node of st.
func node(st admin.ClusterStatus, name string) (admin.NodeStatus, bool) {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return admin.NodeStatus{}, false
}

// control runs `baton <kind> --cluster C --admin URL` and returns its output.
func (b *baton) control(ctx context.Context, kind, cluster string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, batonBin, append([]string{kind, "--cluster", cluster, "--admin", b.adminURL}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
