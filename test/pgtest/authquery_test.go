package pgtest

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Users from the database (auth_query): roles created on the primary after baton started log
// in through baton with what PostgreSQL stores for them (SCRAM verifier, md5 hash), never with
// a password in baton's configuration.

// authQuerySetup is the SQL the README tells a DBA to run (in the database baton's lookups
// connect to), with the lookup role baton_auth.
const authQuerySetup = `
CREATE ROLE baton_auth LOGIN PASSWORD 'lookup-pw';
CREATE SCHEMA baton;
REVOKE ALL ON SCHEMA baton FROM PUBLIC;
GRANT USAGE ON SCHEMA baton TO baton_auth;
CREATE FUNCTION baton.user_lookup(i_username text, OUT usename name, OUT passwd text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
  SELECT rolname, rolpassword FROM pg_catalog.pg_authid
  WHERE rolname = i_username AND rolcanlogin AND NOT rolsuper
    AND (rolvaliduntil IS NULL OR rolvaliduntil > now())
$$;
REVOKE ALL ON FUNCTION baton.user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baton.user_lookup(text) TO baton_auth;
CREATE TABLE aq_log (who text, at timestamptz DEFAULT now());
`

var authQueryOnce sync.Once

// installAuthQuery runs authQuerySetup on the primary once per package run and waits until the
// replicas have it.
func installAuthQuery(t *testing.T) {
	t.Helper()
	var err error
	authQueryOnce.Do(func() {
		c, cerr := pgx.Connect(ctxT(t), pg.Primary.SuperURL())
		if cerr != nil {
			err = cerr
			return
		}
		defer c.Close(context.Background())
		_, err = c.Exec(ctxT(t), authQuerySetup)
	})
	if err != nil {
		t.Fatalf("install the lookup function: %v", err)
	}
	waitReplicated(t)
}

// authQueryBaton starts a baton whose cluster looks users up with ttl (lookups on node).
func authQueryBaton(t *testing.T, ttl time.Duration, node string) *batontest.Baton {
	t.Helper()
	return batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.AuthQuery = &topology.AuthQuery{
			User: "baton_auth", Password: "lookup-pw",
			Query: topology.DefaultPGAuthQuery, Database: pg.Opts.AppDB,
			CacheTTL: topology.Duration(ttl), MaxCached: 100, Node: node,
		}
	})
}

// roleURL is a connection string through b as user.
func roleURL(b *batontest.Baton, user, password string) string {
	ui := neturl.UserPassword(user, password)
	if password == "" {
		ui = neturl.User(user) // psql then takes PGPASSWORD
	}
	return (&neturl.URL{Scheme: "postgres", User: ui,
		Host: b.Inst.Clusters()[0].Addr().String(), Path: "/" + pg.Opts.AppDB, RawQuery: "sslmode=disable"}).String()
}

// superExec runs statements as the superuser on the primary.
func superExec(t *testing.T, sql ...string) {
	t.Helper()
	c := direct(t, pg.Primary)
	for _, q := range sql {
		if _, err := c.Exec(ctxT(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// connectAs logs in through u and returns the connection or the error.
func connectAs(t *testing.T, u string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err == nil {
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

// wantAuthFailed checks err is PostgreSQL's 28P01 for user.
func wantAuthFailed(t *testing.T, err error, user string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" || pe.Severity != "FATAL" ||
		pe.Message != fmt.Sprintf("password authentication failed for user %q", user) {
		t.Fatalf("want FATAL 28P01 password authentication failed for user %q; got %v", user, err)
	}
}

// checkRole: reads run on a replica and writes on the primary, both as user.
func checkRole(t *testing.T, c *pgx.Conn, user string) {
	t.Helper()
	ctx := ctxT(t)
	var who string
	var replica bool
	if err := c.QueryRow(ctx, "/* baton:replica */ SELECT current_user, pg_is_in_recovery()").Scan(&who, &replica); err != nil {
		t.Fatalf("read as %s: %v", user, err)
	}
	if who != user || !replica {
		t.Fatalf("read ran as %q on replica=%v; want %q on a replica", who, replica, user)
	}
	if err := c.QueryRow(ctx, "INSERT INTO aq_log(who) VALUES (current_user) RETURNING who").Scan(&who); err != nil {
		t.Fatalf("write as %s: %v", user, err)
	}
	if who != user {
		t.Fatalf("write ran as %q; want %q", who, user)
	}
	var inRecovery bool
	if err := c.QueryRow(ctx, "/* baton:primary */ SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("primary hint: recovery=%v err=%v", inRecovery, err)
	}
}

// A SCRAM role created after baton started logs in with pgx and psql through two baton
// instances (one looking users up on the primary, one on a replica), reads on a replica and
// writes on the primary as itself; a wrong password and an unknown user get PostgreSQL's
// 28P01.
func TestAuthQuerySCRAMRole(t *testing.T) {
	installAuthQuery(t)
	b1 := authQueryBaton(t, 30*time.Second, "primary")
	b2 := authQueryBaton(t, 30*time.Second, "replica")
	superExec(t, "CREATE ROLE aq_scram LOGIN PASSWORD 'Scr4m pw'",
		"GRANT SELECT, INSERT ON aq_log TO aq_scram")
	t.Cleanup(func() { dropRole(t, "aq_scram") })
	waitReplicated(t)

	for i, b := range []*batontest.Baton{b1, b2} {
		c, err := connectAs(t, roleURL(b, "aq_scram", "Scr4m pw"))
		if err != nil {
			t.Fatalf("baton %d: SCRAM role login: %v", i+1, err)
		}
		checkRole(t, c, "aq_scram")
		out := psqlOut(t, roleURL(b, "aq_scram", ""), []string{"PGPASSWORD=Scr4m pw"}, "-c", "select current_user")
		if out != "aq_scram\nexit 0" {
			t.Fatalf("baton %d: psql as aq_scram: %q", i+1, out)
		}
		_, err = connectAs(t, roleURL(b, "aq_scram", "wrong"))
		wantAuthFailed(t, err, "aq_scram")
		_, err = connectAs(t, roleURL(b, "aq_nobody", "whatever"))
		wantAuthFailed(t, err, "aq_nobody")
	}
	// The configured user keeps working beside the lookup.
	if _, err := connectAs(t, roleURL(b1, pg.Opts.AppUser, pg.Opts.AppPassword)); err != nil {
		t.Fatalf("configured user: %v", err)
	}
	// A superuser is not returned by the lookup function: it cannot log in through it.
	_, err := connectAs(t, roleURL(b1, "postgres", "x"))
	wantAuthFailed(t, err, "postgres")
}

// An md5 role (password stored as an md5 hash; the servers' pg_hba.conf lets it use md5)
// logs in; baton answers the servers' md5 challenge with the stored hash.
func TestAuthQueryMD5Role(t *testing.T) {
	installAuthQuery(t)
	allowMD5(t, "aq_md5")
	b := authQueryBaton(t, 30*time.Second, "primary")
	c := direct(t, pg.Primary)
	ctx := ctxT(t)
	if _, err := c.Exec(ctx, "SET password_encryption = 'md5'"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE ROLE aq_md5 LOGIN PASSWORD 'md5-pw'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropRole(t, "aq_md5") })
	var stored string
	if err := c.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'aq_md5'").Scan(&stored); err != nil || !strings.HasPrefix(stored, "md5") {
		t.Fatalf("md5 role's secret: %.3s… %v", stored, err)
	}
	superExec(t, "GRANT SELECT, INSERT ON aq_log TO aq_md5")
	waitReplicated(t)
	for _, n := range pg.Nodes() {
		u := (&neturl.URL{Scheme: "postgres", User: neturl.UserPassword("aq_md5", "md5-pw"), Host: n.Addr(),
			Path: "/" + pg.Opts.AppDB, RawQuery: "sslmode=disable"}).String()
		awaitLogin(t, "pg_hba.conf reloaded on "+n.Name, 10*time.Second, func() bool {
			c, err := connectAs(t, u)
			if err == nil {
				c.Close(context.Background())
			}
			return err == nil
		})
	}
	mc, err := connectAs(t, roleURL(b, "aq_md5", "md5-pw"))
	if err != nil {
		t.Fatalf("md5 role login: %v", err)
	}
	checkRole(t, mc, "aq_md5")
	_, err = connectAs(t, roleURL(b, "aq_md5", "md5-wrong"))
	wantAuthFailed(t, err, "aq_md5")
}

// With a short cache_ttl, a changed password works (and the old one stops) and a dropped role
// stops logging in, each within the TTL.
func TestAuthQueryTTL(t *testing.T) {
	installAuthQuery(t)
	const ttl = time.Second
	b := authQueryBaton(t, ttl, "primary")
	superExec(t, "CREATE ROLE aq_ttl LOGIN PASSWORD 'first'", "GRANT SELECT, INSERT ON aq_log TO aq_ttl")
	t.Cleanup(func() { dropRole(t, "aq_ttl") })
	waitReplicated(t)
	c, err := connectAs(t, roleURL(b, "aq_ttl", "first"))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	c.Close(context.Background())

	superExec(t, "ALTER ROLE aq_ttl PASSWORD 'second'")
	waitReplicated(t)
	start := time.Now()
	awaitLogin(t, "the new password to work", 5*ttl+5*time.Second, func() bool {
		c, err := connectAs(t, roleURL(b, "aq_ttl", "second"))
		if err != nil {
			return false
		}
		checkRole(t, c, "aq_ttl")
		c.Close(context.Background())
		return true
	})
	t.Logf("new password accepted after %v", time.Since(start).Round(time.Millisecond))
	_, err = connectAs(t, roleURL(b, "aq_ttl", "first"))
	wantAuthFailed(t, err, "aq_ttl")

	dropRole(t, "aq_ttl")
	start = time.Now()
	var last error
	awaitLogin(t, "the dropped role to be refused", 5*ttl+5*time.Second, func() bool {
		var c *pgx.Conn
		c, last = connectAs(t, roleURL(b, "aq_ttl", "second"))
		if last == nil {
			c.Close(context.Background())
			return false
		}
		return true
	})
	wantAuthFailed(t, last, "aq_ttl")
	t.Logf("dropped role refused after %v", time.Since(start).Round(time.Millisecond))
}

// awaitLogin polls cond until it holds or bound passes.
func awaitLogin(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	waitFor(t, ctx, what, cond)
}

// dropRole ends the role's sessions and drops it with what it owns (idempotent).
func dropRole(t *testing.T, role string) {
	t.Helper()
	c, err := pgx.Connect(ctxT(t), pg.Primary.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := ctxT(t)
	var exists bool
	if err := c.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_roles WHERE rolname = $1", role).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return
	}
	for _, q := range []string{
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = " + quoteLit(role),
		"REVOKE ALL ON aq_log FROM " + role,
		"DROP ROLE " + role,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitReplicated(t)
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// allowMD5 puts a pg_hba.conf line that lets role authenticate with md5 in front of the
// others on every node and reloads the configuration. The line stays (other roles are not
// affected).
func allowMD5(t *testing.T, role string) {
	t.Helper()
	line := fmt.Sprintf("host all %s 127.0.0.1/32 md5\n", role)
	for _, n := range pg.Nodes() {
		p := filepath.Join(n.DataDir, "pg_hba.conf")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), line) {
			if err := os.WriteFile(p, append([]byte(line), b...), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c := direct(t, n)
		if _, err := c.Exec(ctxT(t), "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
	}
	// pg_reload_conf only signals the postmaster: the caller awaits a direct md5 login
	// (awaitDirectLogin) once the role exists.
}
