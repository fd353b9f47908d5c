package mywire

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

var registerDriverOnce sync.Once

// registerDriver registers the TLS config and RSA key go-sql-driver/mysql refers to by name.
func registerDriver(t *testing.T) {
	_, cli := testTLS(t)
	registerDriverOnce.Do(func() {
		if err := mysql.RegisterTLSConfig("mywire-test", cli); err != nil {
			t.Fatal(err)
		}
		mysql.RegisterServerPubKey("mywire-test", &rsaKey(t).PublicKey)
	})
}

// openDB connects one go-sql-driver/mysql connection and pings it.
func openDB(t *testing.T, addr, user, password, params string) (*sql.DB, error) {
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/?allowNativePasswords=true&timeout=10s%s", user, password, addr, params)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db, db.Ping()
}

func TestDriverAuth(t *testing.T) {
	registerDriver(t)
	srvTLS, _ := testTLS(t)
	native := &Credential{User: "native", Password: "n-pass", Plugin: PluginNativePassword}
	sha2 := &Credential{User: "sha2", Password: "s-pass", Plugin: PluginCachingSHA2Password}
	empty := &Credential{User: "empty", Password: "", Plugin: PluginNativePassword}
	emptySHA2 := &Credential{User: "emptysha2", Password: "", Plugin: PluginCachingSHA2Password}

	type attempt struct {
		user, password, params string
		denied                 string // "" = success, else "YES" or "NO" (using password), "*" any error
	}
	tests := []struct {
		name     string
		plugin   string // advertised
		withTLS  bool
		withRSA  bool
		attempts []attempt
		cached   int // SHA2Cache entries at the end
	}{
		{"native", PluginNativePassword, false, false, []attempt{
			{"native", "n-pass", "", ""},
			{"native", "bad-pw", "", "YES"},
			{"native", "", "", "NO"},
			{"nobody", "x", "", "YES"},
		}, 0},
		{"native user, server default caching_sha2 (auth switch)", PluginCachingSHA2Password, false, false, []attempt{
			{"native", "n-pass", "", ""},
			{"native", "bad-pw", "", "YES"},
		}, 0},
		{"caching_sha2 full auth over TLS, then fast path without TLS", PluginCachingSHA2Password, true, false, []attempt{
			{"sha2", "s-pass", "", "*"}, // not cached, no TLS, no RSA key: full auth impossible
			{"sha2", "bad-pw", "&tls=mywire-test", "YES"},
			{"sha2", "s-pass", "&tls=mywire-test", ""},
			{"sha2", "s-pass", "", ""}, // fast path: only the cache can make this work
			{"sha2", "bad-pw", "", "YES"},
			{"sha2", "s-pass", "&tls=mywire-test", ""},
		}, 1},
		{"caching_sha2 RSA key retrieval (auth switch from native)", PluginNativePassword, false, true, []attempt{
			{"sha2", "bad-pw", "", "YES"},
			{"sha2", "s-pass", "", ""},
			{"sha2", "s-pass", "", ""},
		}, 1},
		{"caching_sha2 RSA with a pinned server key", PluginCachingSHA2Password, false, true, []attempt{
			{"sha2", "s-pass", "&serverPubKey=mywire-test", ""},
			{"nobody", "s-pass", "&serverPubKey=mywire-test", "YES"},
		}, 1},
		{"empty passwords", PluginCachingSHA2Password, false, false, []attempt{
			{"empty", "", "", ""},
			{"empty", "x", "", "YES"},
			{"emptysha2", "", "", ""},
			{"emptysha2", "x", "", "YES"}, // refused before full authentication
			{"nobody", "", "", "NO"},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.plugin, func(s *fakeServer) {
				if tt.withTLS {
					s.tlsConf = srvTLS
				}
				if tt.withRSA {
					s.rsaKey = rsaKey(t)
				}
			}, native, sha2, empty, emptySHA2)
			for i, a := range tt.attempts {
				_, err := openDB(t, s.addr(), a.user, a.password, a.params)
				serverErr := s.authResult()
				if a.denied == "" {
					if err != nil || serverErr != nil {
						t.Fatalf("attempt %d (%s): %v (server: %v)", i, a.user, err, serverErr)
					}
					continue
				}
				if !errors.Is(serverErr, ErrAccessDenied) {
					t.Fatalf("attempt %d: server error %v does not wrap ErrAccessDenied", i, serverErr)
				} else if a.password != "" && strings.Contains(serverErr.Error(), a.password) {
					t.Fatalf("server error %q contains the password", serverErr)
				}
				if a.denied == "*" {
					if err == nil {
						t.Fatalf("attempt %d: connected", i)
					}
					continue
				}
				var me *mysql.MySQLError
				if !errors.As(err, &me) {
					t.Fatalf("attempt %d (%s): got %v, want a MySQL error", i, a.user, err)
				}
				want := fmt.Sprintf("Access denied for user '%s'@'127.0.0.1' (using password: %s)", a.user, a.denied)
				if me.Number != 1045 || string(me.SQLState[:]) != "28000" || me.Message != want {
					t.Fatalf("attempt %d: got %d %s %q, want 1045 28000 %q", i, me.Number, me.SQLState[:], me.Message, want)
				}
			}
			if got := s.cache.Len(); got != tt.cached {
				t.Fatalf("cache holds %d users, want %d", got, tt.cached)
			}
		})
	}
}

func TestDriverQuery(t *testing.T) {
	registerDriver(t)
	s := newFakeServer(t, PluginCachingSHA2Password, nil, &Credential{User: "app", Password: "pw"})
	for _, params := range []string{"", "&tls=false&multiStatements=true&clientFoundRows=true"} {
		db, err := openDB(t, s.addr(), "app", "pw", params)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.authResult(); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query("SELECT name, n FROM pets")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var name string
			var n sql.NullInt64
			if err := rows.Scan(&name, &n); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s=%v", name, n))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if strings.Join(got, ",") != "cat={3 true},dog={0 false}" {
			t.Fatalf("rows = %v", got)
		}
		res, err := db.Exec("UPDATE pets SET n = n + 1")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 2 {
			t.Fatalf("RowsAffected = %d", n)
		}
		_, err = db.Exec("SELEKT")
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1064 || string(me.SQLState[:]) != "42000" {
			t.Fatalf("bad query: %v", err)
		}
	}
}
