package mytest

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// users[].max_client_connections refuses a session over the limit with MySQL's 1203, after the
// password was checked (a wrong password still gets 1045); a session that ends frees its place.
func TestUserConnectionLimit(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		cl.Users[0].MaxClientConnections = 2
	})
	app := accountDSN(b, my.Opts.AppUser, my.Opts.AppPassword)
	db1, err := sql.Open("mysql", app)
	if err != nil {
		t.Fatal(err)
	}
	defer db1.Close()
	if err := db1.PingContext(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := loginAs(t, app); err != nil {
		t.Fatal(err)
	}
	_, err = loginAs(t, app)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1203 || string(me.SQLState[:]) != "42000" ||
		me.Message != "User "+my.Opts.AppUser+" already has more than 'max_user_connections' active connections" {
		t.Fatalf("want 1203 (42000) User app already has more than 'max_user_connections' active connections; got %v", err)
	}
	_, err = loginAs(t, accountDSN(b, my.Opts.AppUser, "wrong"))
	wantDenied(t, err, my.Opts.AppUser)
	db1.Close() // closes its connection (sql.Conn.Close would only return it to db1's pool)
	awaitAccount(t, "a freed place", 10*time.Second, func() bool {
		db, err := sql.Open("mysql", app)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return db.PingContext(ctxT(t)) == nil
	})
}

// After more failed logins from an address than the backoff lets pass, each further login from
// it waits before its password is checked.
func TestLoginBackoff(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, nil)
	bad := accountDSN(b, my.Opts.AppUser, "wrong")
	for range 12 {
		_, err := loginAs(t, bad)
		wantDenied(t, err, my.Opts.AppUser)
	}
	start := time.Now()
	_, err := loginAs(t, bad)
	wantDenied(t, err, my.Opts.AppUser)
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("the 13th failed login took %v; want the backoff's 200ms", d)
	}
}
