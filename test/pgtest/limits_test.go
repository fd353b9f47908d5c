package pgtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5/pgconn"
)

// want53300 checks err is PostgreSQL's FATAL 53300 with message msg.
func want53300(t *testing.T, err error, msg string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" || pe.Severity != "FATAL" || pe.Message != msg {
		t.Fatalf("want FATAL 53300 %q; got %v", msg, err)
	}
}

// users[].max_client_connections, limits.max_user_connections (for users from the database)
// and limits.max_db_connections refuse sessions over the limit with the server's own errors; a
// session that ends frees its place.
func TestUserAndDatabaseConnectionLimits(t *testing.T) {
	installAuthQuery(t)
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.Users[0].MaxClientConnections = 2
		cl.Limits.MaxUserConnections = 1 // users without their own limit: the superuser, roles from the database
		cl.Limits.MaxDBConnections = 3
		cl.AuthQuery = &topology.AuthQuery{User: "baton_auth", Password: "lookup-pw",
			Query: topology.DefaultPGAuthQuery, Database: pg.Opts.AppDB,
			CacheTTL: topology.Duration(time.Minute), MaxCached: 100, Node: "primary"}
	})
	app := roleURL(b, pg.Opts.AppUser, pg.Opts.AppPassword)
	c1, err := connectAs(t, app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connectAs(t, app); err != nil {
		t.Fatal(err)
	}
	_, err = connectAs(t, app)
	want53300(t, err, `too many connections for role "app"`)

	superuser := roleURL(b, "postgres", pg.Opts.Password)
	if _, err := connectAs(t, superuser); err != nil {
		t.Fatal(err)
	}
	// The database holds 3 sessions now: the role limit comes first, as on the server.
	_, err = connectAs(t, superuser)
	want53300(t, err, `too many connections for role "postgres"`)

	superExec(t, "CREATE ROLE aq_limited LOGIN PASSWORD 'lim'")
	t.Cleanup(func() { dropRole(t, "aq_limited") })
	waitReplicated(t)
	_, err = connectAs(t, roleURL(b, "aq_limited", "lim"))
	want53300(t, err, `too many connections for database "`+pg.Opts.AppDB+`"`)

	c1.Close(context.Background())
	awaitLogin(t, "a freed place in the database", 10*time.Second, func() bool {
		c, err := connectAs(t, roleURL(b, "aq_limited", "lim"))
		if err == nil {
			c.Close(context.Background())
		}
		return err == nil
	})
}

// After more failed logins from an address than the backoff lets pass, each further login from
// it waits before its password is checked, longer with each failure.
func TestLoginBackoff(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, nil)
	bad := roleURL(b, pg.Opts.AppUser, "wrong")
	for range 12 {
		_, err := connectAs(t, bad)
		wantAuthFailed(t, err, pg.Opts.AppUser)
	}
	start := time.Now()
	_, err := connectAs(t, bad)
	wantAuthFailed(t, err, pg.Opts.AppUser)
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("the 13th failed login took %v; want the backoff's 200ms", d)
	}
}

// A parked session (idle, served without a goroutine) still holds its place: the limit counts
// sessions, not goroutines, and the place is freed only when the session ends.
func TestConnectionLimitCountsParkedSessions(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.Users[0].MaxClientConnections = 2
		cl.Limits.ParkIdleAfter = topology.Duration(50 * time.Millisecond)
	})
	app := roleURL(b, pg.Opts.AppUser, pg.Opts.AppPassword)
	c1, err := connectAs(t, app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connectAs(t, app); err != nil {
		t.Fatal(err)
	}
	awaitParked(t, b, 2)
	_, err = connectAs(t, app)
	want53300(t, err, `too many connections for role "app"`)
	c1.Close(context.Background())
	awaitLogin(t, "the place of the parked session that ended", 10*time.Second, func() bool {
		c, err := connectAs(t, app)
		if err == nil {
			c.Close(context.Background())
		}
		return err == nil
	})
}
