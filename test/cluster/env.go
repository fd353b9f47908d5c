package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// EnvPGBin names the environment variable that overrides the directory of
// the PostgreSQL server binaries.
const EnvPGBin = "BATON_PG_BIN"

// serverUserName is the system user the servers run as when the caller is root.
const serverUserName = "postgres"

// InstallHint tells a user how to make PostgreSQL available to this package.
const InstallHint = "install PostgreSQL 15 (Debian/Ubuntu: apt-get install -y postgresql-15; " +
	"macOS: brew install postgresql@15) or set " + EnvPGBin +
	" to the directory holding initdb, postgres and pg_basebackup"

// ErrNoPG reports that the PostgreSQL server binaries were not found.
var ErrNoPG = errors.New("cluster: PostgreSQL server binaries not found")

// requiredBins are the programs StartPG cannot do without.
var requiredBins = []string{"initdb", "postgres", "pg_basebackup"}

// PGBinDir returns the directory holding the PostgreSQL server binaries:
// $BATON_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else the
// directory of `postgres` on $PATH. The error wraps [ErrNoPG] and says how
// to install PostgreSQL.
func PGBinDir() (string, error) {
	if d := os.Getenv(EnvPGBin); d != "" {
		if err := checkBinDir(d); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v; %s", ErrNoPG, EnvPGBin, d, err, InstallHint)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionLess(dirs[j], dirs[i]) })
	for _, d := range dirs {
		if checkBinDir(d) == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if d := filepath.Dir(p); checkBinDir(d) == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w; %s", ErrNoPG, InstallHint)
}

// checkBinDir reports whether dir holds every program in requiredBins.
func checkBinDir(dir string) error {
	for _, name := range requiredBins {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", filepath.Join(dir, name))
		}
	}
	return nil
}

// versionLess orders ".../<version>/bin" paths by numeric version (9.6 < 15).
func versionLess(a, b string) bool {
	va := strings.Split(filepath.Base(filepath.Dir(a)), ".")
	vb := strings.Split(filepath.Base(filepath.Dir(b)), ".")
	for i := 0; i < len(va) && i < len(vb); i++ {
		na, errA := strconv.Atoi(va[i])
		nb, errB := strconv.Atoi(vb[i])
		if errA != nil || errB != nil {
			return va[i] < vb[i]
		}
		if na != nb {
			return na < nb
		}
	}
	return len(va) < len(vb)
}

// serverUser is the system user the server programs run as; nil means the
// caller itself.
type serverUser struct {
	name     string
	uid, gid int
}

// lookupServerUser returns nil when the caller is not root, else the
// "postgres" system user, or an error saying why the servers cannot run.
func lookupServerUser() (*serverUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if !rootSupported {
		return nil, errors.New("cluster: PostgreSQL refuses to run as root and switching users is " +
			"supported on Linux only: run the tests as an ordinary user")
	}
	u, err := user.Lookup(serverUserName)
	if err != nil {
		return nil, fmt.Errorf("cluster: running as root, so PostgreSQL must run as the %q system user, "+
			"which was not found (%v): install the postgresql package or create it with "+
			"`useradd --system --user-group %s`", serverUserName, err, serverUserName)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cluster: user %q has a non-numeric uid/gid %q/%q", u.Username, u.Uid, u.Gid)
	}
	return &serverUser{name: u.Username, uid: uid, gid: gid}, nil
}

// runEnv is what every node of one cluster needs to run PostgreSQL programs.
type runEnv struct {
	bin  string      // directory of the binaries
	user *serverUser // nil: run as the caller
	base string      // cluster base directory: working dir of the tools
	logf func(format string, args ...any)
}

// command prepares a PostgreSQL program with the right user, working
// directory and a clean environment.
func (e *runEnv) command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(e.bin, name), args...)
	// The working directory must be accessible to the server user: initdb
	// run as postgres from /root fails with "could not change directory".
	cmd.Dir = dir
	cmd.Env = e.childEnv()
	cmd.SysProcAttr = sysProcAttr(e.user)
	return cmd
}

// inNetns makes cmd run inside ns: ip netns exec (as root), then setpriv
// to the server user; both exec, so the process id stays the server's.
// (Dropping privileges clears the parent-death signal: the tests stop
// the nodes themselves.)
func (e *runEnv) inNetns(cmd *exec.Cmd, ns *Netns) {
	argv := []string{cmd.Path}
	argv = append(argv, cmd.Args[1:]...)
	if e.user != nil {
		argv = append([]string{"setpriv", "--reuid=" + strconv.Itoa(e.user.uid), "--regid=" + strconv.Itoa(e.user.gid), "--clear-groups", "--"}, argv...)
	}
	full := ns.Command(argv...)
	path, err := exec.LookPath(full[0])
	if err != nil {
		path = full[0]
	}
	cmd.Path, cmd.Args = path, full
	cmd.SysProcAttr = sysProcAttr(nil)
}

// run executes a short-lived tool and returns its output in the error.
func (e *runEnv) run(ctx context.Context, name string, args ...string) error {
	out, err := e.command(ctx, e.base, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// childEnv is the caller's environment without libpq's PG* variables (a
// PGHOST or PGPORT of the developer must not redirect pg_basebackup), with
// HOME pointing somewhere the server user can read.
func (e *runEnv) childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	home := os.Getenv("HOME")
	if e.user != nil || home == "" {
		home = e.base
	}
	return append(env, "HOME="+home)
}

// own gives path to the server user (a no-op when running as self).
func (e *runEnv) own(path string) error {
	if e.user == nil {
		return nil
	}
	if err := os.Chown(path, e.user.uid, e.user.gid); err != nil {
		return fmt.Errorf("cluster: give %s to user %s: %w", path, e.user.name, err)
	}
	return nil
}

// writeFile writes a file readable only by the server user.
func (e *runEnv) writeFile(path, data string) error {
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return e.own(path)
}

// portFree reports whether 127.0.0.1:port can be bound right now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// pickPort returns preferred when it is set and free, else a free port; it
// never returns a port in taken, and adds the result to taken.
func pickPort(preferred int, taken map[int]bool) (int, error) {
	if preferred > 0 && !taken[preferred] && portFree(preferred) {
		taken[preferred] = true
		return preferred, nil
	}
	for range 20 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		if !taken[p] {
			taken[p] = true
			return p, nil
		}
	}
	return 0, errors.New("cluster: no free port found")
}
