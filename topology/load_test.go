package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `log_level: info
clusters:
  - name: pg
    engine: postgres
    listen: 127.0.0.1:6432
    nodes:
      - {name: a, address: 127.0.0.1:5432}
      - name: b
        address: 127.0.0.1:5433
        weight: 2
    users:
      - name: app
        password: s3cret-value
`

func TestLoadGood(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[0]
	if cl.Pool.MaxPerNode != DefaultMaxPerNode || cl.Limits.MaxMessageSize != DefaultMaxMessageSize {
		t.Fatalf("defaults not applied: %+v %+v", cl.Pool, cl.Limits)
	}
	if cl.Users[0].Auth != "scram-sha-256" || cl.Users[0].BackendUser != "app" || cl.Users[0].BackendPassword.Reveal() != "s3cret-value" {
		t.Fatalf("user defaults: %+v", cl.Users[0])
	}
	if cl.Nodes[1].ReadWeight() != 2 || cl.Nodes[0].ReadWeight() != 1 {
		t.Fatal("weights")
	}
}

// A field left out takes its default; a field written as 0 means "no bound" / "no wait".
func TestExplicitZeroVersusDefault(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[0]
	if cl.MaxLag.D() != DefaultMaxLag || cl.MaxLagBytes != DefaultMaxLagBytes || cl.ReadYourWritesWait.D() != DefaultRYWWait {
		t.Fatalf("defaults: max_lag %v, max_lag_bytes %v, read_your_writes_wait %v", cl.MaxLag, cl.MaxLagBytes, cl.ReadYourWritesWait)
	}
	if cl.Pool.ServerLifetime.D() != DefaultServerLifetime {
		t.Fatalf("default pool.server_lifetime %v", cl.Pool.ServerLifetime)
	}
	if cl.Consistency != "read_your_writes" {
		t.Fatalf("default consistency %q; want read_your_writes", cl.Consistency)
	}
	if cl.PoolMode != "transaction" || cl.PoolModeOf(cl.Users[0]) != "transaction" {
		t.Fatalf("default pool_mode %q; want transaction", cl.PoolMode)
	}
	zeros := strings.Replace(good, "    listen: 127.0.0.1:6432\n",
		"    listen: 127.0.0.1:6432\n    max_lag: 0s\n    max_lag_bytes: 0\n    read_your_writes_wait: 0s\n", 1)
	if cfg, err = Parse("x.yaml", []byte(zeros)); err != nil {
		t.Fatal(err)
	}
	cl = cfg.Clusters[0]
	if lt, err := Parse("x.yaml", []byte(strings.Replace(good, "    listen: 127.0.0.1:6432\n",
		"    listen: 127.0.0.1:6432\n    pool: {server_lifetime: 0s}\n", 1))); err != nil || lt.Clusters[0].Pool.ServerLifetime != 0 {
		t.Fatalf("an explicit pool.server_lifetime 0 (unlimited): %v", err)
	}
	if cl.MaxLag != 0 || cl.MaxLagBytes != 0 || cl.ReadYourWritesWait != 0 {
		t.Fatalf("explicit zeros replaced: max_lag %v, max_lag_bytes %v, read_your_writes_wait %v", cl.MaxLag, cl.MaxLagBytes, cl.ReadYourWritesWait)
	}
	neg := strings.Replace(good, "    listen: 127.0.0.1:6432\n", "    listen: 127.0.0.1:6432\n    read_your_writes_wait: -1s\n", 1)
	_, err = Parse("x.yaml", []byte(neg))
	if e, ok := err.(*Error); !ok || e.Line != 6 || e.Field != "clusters[0].read_your_writes_wait" {
		t.Fatalf("a negative read_your_writes_wait: %v, want line 6 and the field named", err)
	}
}

func TestLoadErrorsNameLineAndField(t *testing.T) {
	tests := []struct {
		name, edit, wantField string
		wantLine              int
	}{
		{"bad address", strings.Replace(good, "127.0.0.1:5433", "127.0.0.1", 1), "clusters[0].nodes[1].address", 9},
		{"bad engine", strings.Replace(good, "engine: postgres", "engine: oracle", 1), "clusters[0].engine", 4},
		{"negative weight", strings.Replace(good, "weight: 2", "weight: -1", 1), "clusters[0].nodes[1].weight", 10},
		{"bad auth", strings.Replace(good, "password: s3cret-value", "password: s3cret-value\n        auth: plain", 1), "clusters[0].users[0].auth", 14},
		{"missing env", strings.Replace(good, "password: s3cret-value", "password_env: BATON_TEST_UNSET_VAR", 1), "clusters[0].users[0].password_env", 13},
		{"duplicate node", strings.Replace(good, "name: b", "name: a", 1), "clusters[0].nodes[1].name", 8},
		{"bad duration", strings.Replace(good, "    nodes:\n", "    probe_interval: 5 seconds\n    nodes:\n", 1), "clusters[0].probe_interval", 6},
		{"bad size", strings.Replace(good, "    nodes:\n", "    max_lag_bytes: lots\n    nodes:\n", 1), "clusters[0].max_lag_bytes", 6},
		{"list for a duration", strings.Replace(good, "    nodes:\n", "    max_lag: [1s]\n    nodes:\n", 1), "clusters[0].max_lag", 6},
		{"bad pool_mode", strings.Replace(good, "    nodes:\n", "    pool_mode: statement\n    nodes:\n", 1), "clusters[0].pool_mode", 6},
		{"negative primary_read_weight", strings.Replace(good, "    nodes:\n", "    primary_read_weight: -1\n    nodes:\n", 1), "clusters[0].primary_read_weight", 6},
		{"bad user pool_mode", strings.Replace(good, "password: s3cret-value", "password: s3cret-value\n        pool_mode: txn", 1), "clusters[0].users[0].pool_mode", 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tt.edit))
			if err == nil {
				t.Fatal("no error")
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("%T %v", err, err)
			}
			if e.Field != tt.wantField || e.Line != tt.wantLine || e.File != "cfg.yaml" {
				t.Fatalf("got %q (line %d field %q), want line %d field %q", err, e.Line, e.Field, tt.wantLine, tt.wantField)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatal("secret in error text")
			}
		})
	}
}

func TestUnknownFieldHasLine(t *testing.T) {
	_, err := Parse("cfg.yaml", []byte(strings.Replace(good, "weight: 2", "wieght: 2", 1)))
	e, ok := err.(*Error)
	if !ok || e.Line != 10 || !strings.Contains(e.Msg, "wieght") {
		t.Fatalf("got %v", err)
	}
}

func TestPasswordFileAndRedaction(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "pw")
	if err := os.WriteFile(pf, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("c.yaml", []byte(strings.Replace(good, "password: s3cret-value", "password_file: "+pf, 1)))
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Clusters[0].Users[0]
	if u.Password.Reveal() != "from-file" {
		t.Fatalf("got %q", u.Password.Reveal())
	}
	for _, s := range []string{u.Password.String(), fmtV(u)} {
		if strings.Contains(s, "from-file") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestPoolModeTransactionBothEngines(t *testing.T) {
	my := strings.Replace(good, "engine: postgres", "engine: mysql", 1)
	for _, text := range []string{my, strings.Replace(my, "    nodes:\n", "    pool_mode: transaction\n    nodes:\n", 1)} {
		cfg, err := Parse("cfg.yaml", []byte(text))
		if err != nil || cfg.Clusters[0].PoolModeOf(cfg.Clusters[0].Users[0]) != PoolTransaction {
			t.Fatalf("pool_mode transaction (default or explicit) on MySQL: %v", err)
		}
	}
	bad := strings.Replace(good, "    nodes:\n", "    pool_mode: statement\n    nodes:\n", 1)
	if _, err := Parse("cfg.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "clusters[0].pool_mode") {
		t.Fatalf("pool_mode statement: %v; want an error naming clusters[0].pool_mode", err)
	}
	pgTx := strings.Replace(good, "    nodes:\n", "    pool_mode: transaction\n    nodes:\n", 1)
	cfg, err := Parse("cfg.yaml", []byte(pgTx))
	if err != nil || cfg.Clusters[0].PoolModeOf(cfg.Clusters[0].Users[0]) != PoolTransaction {
		t.Fatalf("pool_mode transaction on PostgreSQL: %v", err)
	}
}

// pool.size, pool.reserve_size and pool.reserve_timeout: defaults, explicit values, an explicit
// reserve_size 0 (no reserve), and negative values named by field and line.
func TestPoolSizing(t *testing.T) {
	withPool := func(pool string) string {
		return strings.Replace(good, "    listen: 127.0.0.1:6432\n", "    listen: 127.0.0.1:6432\n    pool: "+pool+"\n", 1)
	}
	for _, tc := range []struct {
		name, pool string
		size, max  int
		reserve    int
		timeout    Duration
	}{
		{"defaults", "{}", DefaultPoolSize, DefaultMaxPerNode, DefaultReserveSize, Duration(DefaultReserveTimeout)},
		{"explicit", "{size: 5, max_per_node: 40, reserve_size: 2, reserve_timeout: 250ms}", 5, 40, 2, Duration(250 * time.Millisecond)},
		{"no reserve", "{reserve_size: 0}", DefaultPoolSize, DefaultMaxPerNode, 0, Duration(DefaultReserveTimeout)},
		// A session keeps its connection: a bound per user would bound its clients.
		{"session mode", "{max_per_node: 60}\n    pool_mode: session", 60, 60, DefaultReserveSize, Duration(DefaultReserveTimeout)},
		{"session mode, explicit size", "{size: 10}\n    pool_mode: session", 10, DefaultMaxPerNode, DefaultReserveSize, Duration(DefaultReserveTimeout)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(withPool(tc.pool)))
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.Clusters[0].Pool
			if p.Size != tc.size || p.MaxPerNode != tc.max || p.ReserveSize != tc.reserve || p.ReserveTimeout != tc.timeout {
				t.Fatalf("size %d max_per_node %d reserve_size %d reserve_timeout %v; want %d %d %d %v",
					p.Size, p.MaxPerNode, p.ReserveSize, p.ReserveTimeout, tc.size, tc.max, tc.reserve, tc.timeout)
			}
		})
	}
	for _, field := range []string{"size: -1", "reserve_size: -1", "reserve_timeout: -1s"} {
		_, err := Parse("x.yaml", []byte(withPool("{"+field+"}")))
		name, _, _ := strings.Cut(field, ":")
		if e, ok := err.(*Error); !ok || e.Field != "clusters[0].pool."+name || e.Line != 6 {
			t.Fatalf("pool %s: %v; want an error naming clusters[0].pool.%s on line 6", field, err, name)
		}
	}
}
