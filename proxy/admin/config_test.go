package admin_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/baton-proxy/baton/topology"
)

const baseConfig = `clusters:
  - name: pg
    engine: postgres
    listen: 127.0.0.1:6432
    nodes:
      - {name: a, address: 127.0.0.1:5432}
    users:
      - {name: app, password: app}
`

// The admin section of the configuration: defaults, disabling, and the rule that a listener
// reachable from other hosts needs a token.
func TestAdminConfig(t *testing.T) {
	t.Setenv("BATON_TEST_ADMIN_TOKEN", "from-env")
	tests := []struct {
		name       string
		admin      string
		wantListen string
		wantToken  string
		wantField  string // a validation error at this field
		wantLine   int
	}{
		{name: "absent: default", wantListen: topology.DefaultAdminListen},
		{name: "token only: default listen", admin: "admin: {token: abc}\n", wantListen: topology.DefaultAdminListen, wantToken: "abc"},
		{name: "off", admin: "admin:\n  listen: off\n"},
		{name: "empty", admin: "admin:\n  listen: \"\"\n"},
		{name: "localhost", admin: "admin:\n  listen: localhost:9191\n", wantListen: "localhost:9191"},
		{name: "ipv6 loopback", admin: "admin:\n  listen: \"[::1]:9090\"\n", wantListen: "[::1]:9090"},
		{name: "public with token", admin: "admin:\n  listen: 0.0.0.0:9090\n  token: s3\n", wantListen: "0.0.0.0:9090", wantToken: "s3"},
		{name: "public with token_env", admin: "admin:\n  listen: 10.1.2.3:9090\n  token_env: BATON_TEST_ADMIN_TOKEN\n", wantListen: "10.1.2.3:9090", wantToken: "from-env"},
		{name: "public without token", admin: "admin:\n  listen: 0.0.0.0:9090\n", wantField: "admin.listen", wantLine: 10},
		{name: "hostname without token", admin: "admin:\n  token: \"\"\n  listen: admin.example.com:9090\n", wantField: "admin.listen", wantLine: 11},
		{name: "bad address", admin: "admin:\n  listen: 9090\n", wantField: "admin.listen", wantLine: 10},
		{name: "token_env unset", admin: "admin:\n  token_env: BATON_TEST_NO_SUCH_VAR\n", wantField: "admin.token_env", wantLine: 10},
		{name: "token and token_env", admin: "admin:\n  token: x\n  token_env: BATON_TEST_ADMIN_TOKEN\n", wantField: "admin.token", wantLine: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := topology.Parse("baton.yaml", []byte(baseConfig+tt.admin))
			if tt.wantField != "" {
				var e *topology.Error
				if !errors.As(err, &e) || e.Field != tt.wantField || e.Line != tt.wantLine || !strings.HasPrefix(err.Error(), "baton.yaml:") {
					t.Fatalf("error %v (%#v), want field %s at line %d", err, e, tt.wantField, tt.wantLine)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Admin.Listen != tt.wantListen || cfg.Admin.Token.Reveal() != tt.wantToken {
				t.Errorf("admin %+v (token %q), want listen %q token %q", cfg.Admin, cfg.Admin.Token.Reveal(), tt.wantListen, tt.wantToken)
			}
			if cfg.Admin.Enabled() != (tt.wantListen != "") {
				t.Errorf("Enabled() = %v", cfg.Admin.Enabled())
			}
		})
	}
}
