package etcdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// serverModule is the module whose root package is etcd's main package.
const serverModule = "go.etcd.io/etcd/server/v3"

// binary caches the result of the first successful Binary call of this process.
var binary struct {
	mu   sync.Mutex
	path string
}

// Binary returns the path of an etcd server binary: $BATON_ETCD_BIN if set, else the binary
// built from the go.etcd.io/etcd/server/v3 version baton's go.mod requires. That one is built
// at most once per machine and version, into
// <os.UserCacheDir()>/baton-test/etcd-<version>-<goos>_<goarch>/etcd; concurrent test binaries
// each build to a temporary name and rename, so none ever runs a half-written file. A cold
// build takes a minute or so on two cores; later calls return at once.
//
// Safe for concurrent use.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv("BATON_ETCD_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("etcdtest: BATON_ETCD_BIN: %w", err)
		}
		return p, nil
	}
	binary.mu.Lock()
	defer binary.mu.Unlock()
	if binary.path != "" {
		return binary.path, nil
	}
	p, err := build(ctx)
	if err != nil {
		return "", err
	}
	binary.path = p
	return p, nil
}

func build(ctx context.Context) (string, error) {
	goCmd, err := goTool()
	if err != nil {
		return "", err
	}
	dir := moduleDir()
	out, err := goCommand(ctx, goCmd, dir, "list", "-m", "-f", "{{.Version}}", serverModule).Output()
	if err != nil {
		return "", fmt.Errorf("etcdtest: go list -m %s: %w%s", serverModule, err, stderrOf(err))
	}
	version := strings.TrimSpace(string(out))
	if version == "" || strings.ContainsAny(version, `/\`) {
		return "", fmt.Errorf("etcdtest: unexpected version %q of %s", version, serverModule)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	binDir := filepath.Join(cache, "baton-test", "etcd-"+version+"-"+runtime.GOOS+"_"+runtime.GOARCH)
	final := filepath.Join(binDir, "etcd")
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o100 != 0 {
		return final, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("etcdtest: %w", err)
	}
	var r [6]byte
	rand.Read(r[:])
	tmp := filepath.Join(binDir, "etcd.tmp-"+hex.EncodeToString(r[:]))
	defer os.Remove(tmp) // gone after the rename; removes the leftover of a failed build
	cmd := goCommand(ctx, goCmd, dir, "build", "-o", tmp, serverModule)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("etcdtest: go build %s@%s: %w\n%s", serverModule, version, err, b)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("etcdtest: %w", err)
	}
	return final, nil
}

// goCommand runs the go tool in dir, inside baton's module.
func goCommand(ctx context.Context, goCmd, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	return cmd
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// goTool finds the go command: on $PATH, else in the GOROOT this binary was built with.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("etcdtest: the go command is needed to build etcd (or set BATON_ETCD_BIN to an etcd binary)")
}

// moduleDir is a directory inside baton's module: this source file's directory when it still
// exists (it does not in a -trimpath build), else the working directory (a test's package).
func moduleDir() string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if _, err := os.Stat(file); err == nil {
			return filepath.Dir(file)
		}
	}
	wd, _ := os.Getwd()
	return wd
}
