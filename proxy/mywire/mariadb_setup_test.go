package mywire

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A throwaway MariaDB server for the integration tests, started on first use and stopped by
// TestMain. A missing server is a test failure with the install hint, never a skip.

const (
	mariaUser     = "mywire"
	mariaPassword = "mywire-pw"
	mariaInstall  = "install it with: apt-get install -y mariadb-server (the MariaDB tests never skip)"
)

type mariaServer struct {
	dir  string
	addr string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
}

var maria struct {
	once sync.Once
	srv  *mariaServer
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if maria.srv != nil {
		maria.srv.stop()
	}
	os.Exit(code)
}

// mariaDB returns the running test server, starting it on first use.
func mariaDB(t *testing.T) *mariaServer {
	t.Helper()
	maria.once.Do(func() { maria.srv, maria.err = startMariaDB() })
	if maria.err != nil {
		t.Fatalf("MariaDB: %v", maria.err)
	}
	return maria.srv
}

func findBinary(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found; %s", name, mariaInstall)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func startMariaDB() (*mariaServer, error) {
	mariadbd, err := findBinary("mariadbd", "/usr/sbin", "/usr/libexec")
	if err != nil {
		return nil, err
	}
	installDB, err := findBinary("mariadb-install-db", "/usr/bin", "/usr/scripts")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mywire-mariadb-")
	if err != nil {
		return nil, err
	}
	s := &mariaServer{dir: dir, sock: filepath.Join(dir, "s.sock"), done: make(chan struct{})}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(installDB, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	certFile, keyFile, err := writeServerCert(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.cmd = exec.Command(mariadbd, "--no-defaults", "--datadir="+data, "--user=root",
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket="+s.sock,
		"--skip-name-resolve", "--server-id=1", "--log-bin=binlog", "--local-infile=1",
		"--ssl-cert="+certFile, "--ssl-key="+keyFile, "--log-error="+filepath.Join(dir, "error.log"),
		"--pid-file="+filepath.Join(dir, "mariadbd.pid"), "--innodb-buffer-pool-size=32M")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting mariadbd: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.setup(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		s.stop()
		return nil, fmt.Errorf("%w\nerror.log:\n%s", err, log)
	}
	return s, nil
}

// setup waits for the server and, as root over the socket, creates the test user and schema.
func (s *mariaServer) setup() error {
	db, err := sql.Open("mysql", "root@unix("+s.sock+")/?timeout=2s")
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err = db.Ping(); err == nil {
			break
		}
		select {
		case <-s.done:
			return fmt.Errorf("mariadbd exited: %v", s.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd not ready after 60s: %w", err)
		}
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", mariaUser, mariaPassword),
		fmt.Sprintf("GRANT ALL ON *.* TO '%s'@'%%'", mariaUser),
		"SET GLOBAL max_allowed_packet = 64 * 1024 * 1024",
		"CREATE DATABASE mywire",
		"CREATE TABLE mywire.t (id INT PRIMARY KEY, name VARCHAR(20))",
	} {
		if _, err := db.Exec(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (s *mariaServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeServerCert writes a self-signed RSA certificate for 127.0.0.1 (the test CA is the
// certificate itself: mariaTLSPool trusts it).
func writeServerCert(dir string) (certFile, keyFile string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mywire-mariadb"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// certPool reads the server certificate back for the client's RootCAs.
func (s *mariaServer) certPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "cert.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("bad certificate file")
	}
	return pool, nil
}
