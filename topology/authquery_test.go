package topology

import (
	"strings"
	"testing"
	"time"
)

func TestAuthQueryConfig(t *testing.T) {
	t.Setenv("AQ_PW", "from-env")
	base := func(engine, aq string) string {
		return "clusters:\n  - name: c\n    engine: " + engine + "\n    listen: 127.0.0.1:6432\n    database: appdb\n" +
			"    nodes: [{name: a, address: 127.0.0.1:5432}]\n    users: [{name: app, password: x}]\n" + aq
	}
	for _, tc := range []struct {
		name, engine, aq string
		err              string // substring of the error; "" = valid
		check            func(*testing.T, *AuthQuery)
	}{
		{"absent is off", "postgres", "", "", func(t *testing.T, a *AuthQuery) {
			if a.Enabled() {
				t.Fatal("enabled")
			}
		}},
		{"postgres defaults", "postgres", "    auth_query: {user: baton_auth, password_env: AQ_PW}\n", "", func(t *testing.T, a *AuthQuery) {
			if !a.Enabled() || a.Query != DefaultPGAuthQuery || a.Database != "appdb" || a.CacheTTL.D() != 30*time.Second ||
				a.Node != "primary" || a.Password.Reveal() != "from-env" || a.MaxCached != DefaultAuthMaxCache {
				t.Fatalf("%+v", a)
			}
		}},
		{"mysql defaults", "mysql", "    auth_query: {user: baton_auth, password: p, cache_ttl: 5s, node: replica}\n", "", func(t *testing.T, a *AuthQuery) {
			if a.Query != DefaultMyAuthQuery || a.Database != "" || a.CacheTTL.D() != 5*time.Second || !a.PreferReplica() {
				t.Fatalf("%+v", a)
			}
		}},
		{"off", "postgres", "    auth_query: {off: true}\n", "", func(t *testing.T, a *AuthQuery) {
			if a.Enabled() {
				t.Fatal("enabled")
			}
		}},
		{"no user", "postgres", "    auth_query: {password: p}\n", "auth_query.user", nil},
		{"both passwords", "postgres", "    auth_query: {user: u, password: p, password_env: AQ_PW}\n", "auth_query.password", nil},
		{"unset env", "postgres", "    auth_query: {user: u, password_env: AQ_NOT_SET_ANYWHERE}\n", "AQ_NOT_SET_ANYWHERE", nil},
		{"query without parameter", "postgres", "    auth_query: {user: u, query: 'SELECT 1'}\n", "auth_query.query", nil},
		{"mysql placeholder", "mysql", "    auth_query: {user: u, query: 'SELECT a, b FROM v WHERE u = $1'}\n", "parameter ?", nil},
		{"bad node", "postgres", "    auth_query: {user: u, node: any}\n", "auth_query.node", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(base(tc.engine, tc.aq)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v; want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "from-env") {
					t.Fatal("the error shows the password")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg.Clusters[0].AuthQuery)
		})
	}
}
