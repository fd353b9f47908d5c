package mytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// Users from the database (auth_query) on MariaDB: accounts created on the primary after baton
// started log in through baton with their stored mysql_native_password hash.

// myAuthQuerySetup is the SQL the README gives for MariaDB 10.4+ (accounts live in
// mysql.global_priv): a SQL SECURITY DEFINER view that only the lookup account may read.
var myAuthQuerySetup = []string{
	"CREATE DATABASE baton",
	`CREATE SQL SECURITY DEFINER VIEW baton.user_lookup AS
	  SELECT User AS user,
	         JSON_VALUE(Priv, '$.authentication_string') AS authentication_string,
	         JSON_VALUE(Priv, '$.plugin') AS plugin
	  FROM mysql.global_priv
	  WHERE Host = '%'
	    AND IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') <> 'true'
	    AND IFNULL(JSON_VALUE(Priv, '$.is_role'), 'false') <> 'true'
	    AND IFNULL(JSON_VALUE(Priv, '$.password_last_changed'), 1) <> 0`,
	"CREATE USER baton_auth@'%' IDENTIFIED BY 'lookup-pw'",
	"GRANT SELECT ON baton.user_lookup TO baton_auth@'%'",
	"CREATE TABLE aq_log (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(200))",
}

var myAuthQueryOnce sync.Once

func installMyAuthQuery(t *testing.T) {
	t.Helper()
	var err error
	myAuthQueryOnce.Do(func() { err = rootExec(t, myAuthQuerySetup...) })
	if err != nil {
		t.Fatalf("install the lookup view: %v", err)
	}
	waitReplicated(t)
}

// rootExec runs statements as root on the primary.
func rootExec(t *testing.T, stmts ...string) error {
	t.Helper()
	db, err := sql.Open("mysql", my.Primary.RootDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctxT(t), q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func mustRootExec(t *testing.T, stmts ...string) {
	t.Helper()
	if err := rootExec(t, stmts...); err != nil {
		t.Fatal(err)
	}
}

func myAuthQueryBaton(t *testing.T, ttl time.Duration, node string) *batontest.Baton {
	t.Helper()
	return batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		cl.AuthQuery = &topology.AuthQuery{
			User: "baton_auth", Password: "lookup-pw", Query: topology.DefaultMyAuthQuery,
			CacheTTL: topology.Duration(ttl), MaxCached: 100, Node: node,
		}
	})
}

func accountDSN(b *batontest.Baton, user, password string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s", user, password, b.Inst.Clusters()[0].Addr(), my.Opts.AppDB)
}

// loginAs opens one connection through dsn.
func loginAs(t *testing.T, dsn string) (*sql.Conn, error) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := db.Conn(ctx)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// wantDenied checks err is MySQL's 1045 for user with a password.
func wantDenied(t *testing.T, err error, user string) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 || string(me.SQLState[:]) != "28000" ||
		!strings.HasPrefix(me.Message, "Access denied for user '"+user+"'@'") ||
		!strings.HasSuffix(me.Message, "(using password: YES)") {
		t.Fatalf("want 1045 (28000) Access denied for user '%s'@… (using password: YES); got %v", user, err)
	}
}

// checkAccount: a read runs on a replica and a write on the primary, both as user.
func checkAccount(t *testing.T, c *sql.Conn, user string) {
	t.Helper()
	ctx := ctxT(t)
	var who string
	var port int
	if err := c.QueryRowContext(ctx, "/* baton:replica */ SELECT CURRENT_USER(), @@port").Scan(&who, &port); err != nil {
		t.Fatalf("read as %s: %v", user, err)
	}
	if who != user+"@%" || !isReplicaPort(port) {
		t.Fatalf("read ran as %q on port %d; want %s@%% on a replica", who, port, user)
	}
	if _, err := c.ExecContext(ctx, "INSERT INTO aq_log(who) VALUES (CONCAT(CURRENT_USER(), ' on ', @@port))"); err != nil {
		t.Fatalf("write as %s: %v", user, err)
	}
	db, err := sql.Open("mysql", my.Primary.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT who FROM aq_log ORDER BY id DESC LIMIT 1").Scan(&who); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s@%% on %d", user, my.Primary.Port); who != want {
		t.Fatalf("write ran as %q; want %q", who, want)
	}
}

// A mysql_native_password account created after baton started logs in through two baton
// instances (lookups on the primary, on a replica) with go-sql-driver and the mariadb CLI,
// reads on a replica and writes on the primary as itself; a wrong password, an unknown user
// and an account whose plugin baton cannot pass through get 1045.
func TestAuthQueryNativeAccount(t *testing.T) {
	installMyAuthQuery(t)
	b1 := myAuthQueryBaton(t, 30*time.Second, "primary")
	b2 := myAuthQueryBaton(t, 30*time.Second, "replica")
	mustRootExec(t, "CREATE USER aq_native@'%' IDENTIFIED BY 'N4tive pw'",
		"GRANT SELECT, INSERT ON "+my.Opts.AppDB+".aq_log TO aq_native@'%'",
		"CREATE USER aq_sock@'%' IDENTIFIED VIA unix_socket")
	t.Cleanup(func() { rootExec(t, "DROP USER IF EXISTS aq_native@'%'", "DROP USER IF EXISTS aq_sock@'%'") })
	waitReplicated(t)
	for i, b := range []*batontest.Baton{b1, b2} {
		c, err := loginAs(t, accountDSN(b, "aq_native", "N4tive pw"))
		if err != nil {
			t.Fatalf("baton %d: login: %v", i+1, err)
		}
		checkAccount(t, c, "aq_native")
		host, port, _ := strings.Cut(b.Inst.Clusters()[0].Addr().String(), ":")
		out, err := exec.Command(mariadbCLI, "--no-defaults", "-h", host, "-P", port, "-u", "aq_native",
			"-pN4tive pw", "-N", "-B", "-e", "SELECT CURRENT_USER()", my.Opts.AppDB).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "aq_native@%" {
			t.Fatalf("baton %d: mariadb CLI: %v: %s", i+1, err, out)
		}
		_, err = loginAs(t, accountDSN(b, "aq_native", "wrong"))
		wantDenied(t, err, "aq_native")
		_, err = loginAs(t, accountDSN(b, "aq_nobody", "x"))
		wantDenied(t, err, "aq_nobody")
		_, err = loginAs(t, accountDSN(b, "aq_sock", "x"))
		wantDenied(t, err, "aq_sock")
	}
	// The configured user keeps working beside the lookup.
	if _, err := loginAs(t, accountDSN(b1, my.Opts.AppUser, my.Opts.AppPassword)); err != nil {
		t.Fatalf("configured user: %v", err)
	}
}

// With a short cache_ttl a changed password works (and the old one stops), and a dropped
// account stops logging in, each within the TTL.
func TestAuthQueryAccountTTL(t *testing.T) {
	installMyAuthQuery(t)
	const ttl = time.Second
	b := myAuthQueryBaton(t, ttl, "primary")
	mustRootExec(t, "CREATE USER aq_ttl@'%' IDENTIFIED BY 'first'",
		"GRANT SELECT, INSERT ON "+my.Opts.AppDB+".aq_log TO aq_ttl@'%'")
	t.Cleanup(func() { rootExec(t, "DROP USER IF EXISTS aq_ttl@'%'") })
	waitReplicated(t)
	c, err := loginAs(t, accountDSN(b, "aq_ttl", "first"))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	c.Close()

	mustRootExec(t, "ALTER USER aq_ttl@'%' IDENTIFIED BY 'second'")
	waitReplicated(t)
	start := time.Now()
	awaitAccount(t, "the new password to work", 5*ttl+5*time.Second, func() bool {
		c, err := loginAs(t, accountDSN(b, "aq_ttl", "second"))
		if err != nil {
			return false
		}
		checkAccount(t, c, "aq_ttl")
		c.Close()
		return true
	})
	t.Logf("new password accepted after %v", time.Since(start).Round(time.Millisecond))
	_, err = loginAs(t, accountDSN(b, "aq_ttl", "first"))
	wantDenied(t, err, "aq_ttl")

	mustRootExec(t, "DROP USER aq_ttl@'%'")
	waitReplicated(t)
	start = time.Now()
	var last error
	awaitAccount(t, "the dropped account to be refused", 5*ttl+5*time.Second, func() bool {
		var c *sql.Conn
		c, last = loginAs(t, accountDSN(b, "aq_ttl", "second"))
		if last == nil {
			c.Close()
			return false
		}
		return true
	})
	wantDenied(t, last, "aq_ttl")
	t.Logf("dropped account refused after %v", time.Since(start).Round(time.Millisecond))
}

// awaitAccount polls cond every 20ms until it holds; the test fails after bound.
func awaitAccount(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
