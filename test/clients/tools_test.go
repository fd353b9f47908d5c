package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// needCmd fails when a program is missing, naming the Debian package that has it.
func needCmd(name, pkg string) func() error {
	return func() error {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("%s not found: apt-get install -y %s (or run test/scripts/deps.sh test)", name, pkg)
		}
		return nil
	}
}

// debianPython is Debian's interpreter: the python3-* driver packages install into its
// dist-packages, which a python3 earlier on $PATH (pyenv, a venv) does not see.
const debianPython = "/usr/bin/python3"

// needPython fails when Debian's python3 cannot import module, naming the package.
func needPython(module, pkg string) func() error {
	return func() error {
		out, err := exec.Command(debianPython, "-c", "import "+module).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s cannot import %s (%v: %s): apt-get install -y python3 %s (or run test/scripts/deps.sh test)",
				debianPython, module, err, strings.TrimSpace(string(out)), pkg)
		}
		return nil
	}
}

// cleanEnv is the environment of a client process: the test's own, without the libpq and
// MySQL variables a developer may have set (they would change what the client sends).
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "MYSQL") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runProc runs a client process and returns its standard output and error, interleaved as it
// wrote them, followed by its exit status when not 0.
func runProc(ctx context.Context, dir, stdin string, env []string, name string, args ...string) string {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		fmt.Fprintf(&b, "TIMEOUT: the client did not finish: %v\n", ctx.Err())
	} else if err != nil {
		fmt.Fprintf(&b, "EXIT: %v\n", err)
	}
	return b.String()
}

// srcDir is this package's directory (go test runs in it).
func srcDir(sub string) string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, sub)
}

// Java: each program under java/ is compiled once per test binary, against its driver only,
// into one temporary directory.
var (
	javaDirOnce sync.Once
	javaDir     string
	javaDirErr  error
	javaMu      sync.Mutex
	javaBuilt   = map[string]error{}
)

const (
	pgJDBCJar   = "/usr/share/java/postgresql.jar"
	mariaDBJJar = "/usr/share/java/mariadb-java-client.jar"
)

func javaClasspath(jar string) string {
	return javaDir + string(os.PathListSeparator) + jar
}

// needJava checks javac, java and the driver jar, then compiles java/<class>.java.
func needJava(class, jar, pkg string) func() error {
	return func() error {
		if err := needCmd("javac", "openjdk-17-jdk-headless")(); err != nil {
			return err
		}
		if _, err := os.Stat(jar); err != nil {
			return fmt.Errorf("%s not found: apt-get install -y %s (or run test/scripts/deps.sh test)", jar, pkg)
		}
		javaDirOnce.Do(func() { javaDir, javaDirErr = os.MkdirTemp("", "baton-clients-java-") })
		if javaDirErr != nil {
			return javaDirErr
		}
		javaMu.Lock()
		defer javaMu.Unlock()
		if err, done := javaBuilt[class]; done {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var err error
		if out, cerr := exec.CommandContext(ctx, "javac", "-encoding", "UTF-8", "-nowarn", "-d", javaDir, "-cp", jar,
			srcDir(filepath.Join("java", class+".java"))).CombinedOutput(); cerr != nil {
			err = fmt.Errorf("javac %s.java: %v\n%s", class, cerr, out)
		}
		javaBuilt[class] = err
		return err
	}
}

// Node: node/ holds package.json and package-lock.json with exact versions; node_modules is
// installed by test/scripts/deps.sh, or here with npm ci when it is missing or stale.
var (
	nodeOnce sync.Once
	nodeErr  error
)

func needNode() error {
	if err := needCmd("node", "nodejs")(); err != nil {
		return err
	}
	nodeOnce.Do(func() {
		dir := srcDir("node")
		lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
		if err != nil {
			nodeErr = err
			return
		}
		if have, err := os.ReadFile(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && sameDeps(lock, have) {
			return
		}
		if _, err := exec.LookPath("npm"); err != nil {
			nodeErr = errors.New("npm not found: install npm (Debian: apt-get install -y npm), then run test/scripts/deps.sh test")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			nodeErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	return nodeErr
}

// sameDeps reports whether npm's record of the installed tree names every package version of
// the lock file (a cheap staleness check: npm writes node_modules/.package-lock.json).
func sameDeps(lock, installed []byte) bool {
	for _, l := range strings.Split(string(lock), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, `"version":`) && !bytes.Contains(installed, []byte(l)) {
			return false
		}
	}
	return true
}

func cleanupTools() {
	if javaDir != "" {
		os.RemoveAll(javaDir)
	}
}
