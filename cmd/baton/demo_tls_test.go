package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// demoBackendsEncrypted checks, through the demo's listeners, that baton's backend connections
// to a PostgreSQL replica and primary and to a MariaDB replica and primary are TLS (the demo
// runs backend_tls verify-full against the CA it generated for its nodes).
func demoBackendsEncrypted(t *testing.T, ctx context.Context, pg *pgx.Conn, my *sql.DB, output string) {
	t.Helper()
	for _, name := range []string{"pg", "my"} {
		if want := "baton demo: " + name + " nodes run TLS; baton verifies them (backend_tls verify-full"; !strings.Contains(output, want) {
			t.Errorf("the demo did not say %q", want)
		}
	}
	for _, hint := range []string{"/* baton:replica */ ", "/* baton:primary */ "} {
		var ssl bool
		if err := pg.QueryRow(ctx, hint+"SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
			t.Errorf("%sPostgreSQL backend connection: ssl %v, %v", hint, ssl, err)
		}
		var cipher string
		if err := my.QueryRowContext(ctx, hint+"SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'").Scan(&cipher); err != nil || cipher == "" {
			t.Errorf("%sMariaDB backend connection: Ssl_cipher %q, %v", hint, cipher, err)
		}
	}
}
