package main

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// demoDBUserLogins: the demo's database-only user (auth_query) logs in through both of the
// demo's listeners and runs as itself.
func demoDBUserLogins(t *testing.T, ctx context.Context, rd demoReady) {
	t.Helper()
	u, err := url.Parse(rd.Postgres.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(demoDBUser, demoDBPassword)
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("the demo's database-only role through baton: %v", err)
	}
	defer c.Close(context.Background())
	var who string
	if err := c.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != demoDBUser {
		t.Fatalf("PostgreSQL current_user %q, %v", who, err)
	}
	cfg, err := mysql.ParseDSN(rd.MySQL.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd = demoDBUser, demoDBPassword
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&who); err != nil || !strings.HasPrefix(who, demoDBUser+"@") {
		t.Fatalf("MariaDB CURRENT_USER() %q, %v", who, err)
	}
	if _, err := pgx.Connect(ctx, strings.Replace(u.String(), demoDBPassword+"@", "wrong@", 1)); err == nil {
		t.Fatalf("a wrong password for %s was accepted", demoDBUser)
	}
}
