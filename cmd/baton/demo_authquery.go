package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/baton-proxy/baton/topology"
)

// Users from the database in the demo: for a cluster whose configuration turns auth_query on,
// the demo installs what the README tells a DBA to install (the lookup role and its SECURITY
// DEFINER function or view), and creates one role that exists only in the database, so that
// it logs in through baton without being in the configuration.

// demoDBUser / demoDBPassword: the demo's user that only the database knows.
const demoDBUser, demoDBPassword = "alice", "alice"

// pgAuthQuerySQL installs the PostgreSQL lookup (README "Users from the database"); %[1]s is
// the lookup role, %[2]s its password literal, %[3]s its name as a literal. Idempotent, for a demo --dir reused.
const pgAuthQuerySQL = `
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %[3]s) THEN CREATE ROLE %[1]s LOGIN; END IF;
END $$;
ALTER ROLE %[1]s LOGIN PASSWORD %[2]s;
CREATE SCHEMA IF NOT EXISTS baton;
REVOKE ALL ON SCHEMA baton FROM PUBLIC;
GRANT USAGE ON SCHEMA baton TO %[1]s;
CREATE OR REPLACE FUNCTION baton.user_lookup(i_username text, OUT usename name, OUT passwd text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
  SELECT rolname, rolpassword FROM pg_catalog.pg_authid
  WHERE rolname = i_username AND rolcanlogin AND NOT rolsuper
    AND (rolvaliduntil IS NULL OR rolvaliduntil > now())
$f$;
REVOKE ALL ON FUNCTION baton.user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baton.user_lookup(text) TO %[1]s;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '` + demoDBUser + `') THEN
    CREATE ROLE ` + demoDBUser + ` LOGIN PASSWORD '` + demoDBPassword + `';
  END IF;
END $$;
GRANT CREATE, USAGE ON SCHEMA public TO ` + demoDBUser + `;
`

// myAuthQuerySQL installs the MariaDB lookup view (README "Users from the database"); {user}
// is the lookup account, {password} its password literal.
var myAuthQuerySQL = []string{
	"CREATE DATABASE IF NOT EXISTS baton",
	`CREATE OR REPLACE SQL SECURITY DEFINER VIEW baton.user_lookup AS
	  SELECT User AS user,
	         JSON_VALUE(Priv, '$.authentication_string') AS authentication_string,
	         JSON_VALUE(Priv, '$.plugin') AS plugin
	  FROM mysql.global_priv
	  WHERE Host = '%'
	    AND IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') <> 'true'
	    AND IFNULL(JSON_VALUE(Priv, '$.is_role'), 'false') <> 'true'
	    AND IFNULL(JSON_VALUE(Priv, '$.password_last_changed'), 1) <> 0`,
	"CREATE USER IF NOT EXISTS {user}@'%'",
	"ALTER USER {user}@'%' IDENTIFIED BY {password}",
	"GRANT SELECT ON baton.user_lookup TO {user}@'%'",
	"CREATE USER IF NOT EXISTS " + demoDBUser + "@'%' IDENTIFIED BY '" + demoDBPassword + "'",
	"GRANT ALL ON app.* TO " + demoDBUser + "@'%'",
}

// demoAuthQueryPG installs the lookup on the PostgreSQL primary (superURL: the superuser on
// the cluster's database) when cl has auth_query on.
func demoAuthQueryPG(ctx context.Context, superURL string, cl *topology.Cluster) error {
	aq := cl.AuthQuery
	if !aq.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, superURL)
	if err != nil {
		return fmt.Errorf("demo: installing the auth_query function: %w", err)
	}
	defer c.Close(context.Background())
	sql := fmt.Sprintf(pgAuthQuerySQL, pgx.Identifier{aq.User}.Sanitize(), pgLiteral(aq.Password.Reveal()), pgLiteral(aq.User))
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("demo: installing the auth_query function: %w", err)
	}
	return nil
}

// demoAuthQueryMy installs the lookup view on the MariaDB primary (rootDSN: root over TCP) when
// cl has auth_query on.
func demoAuthQueryMy(ctx context.Context, rootDSN string, cl *topology.Cluster) error {
	aq := cl.AuthQuery
	if !aq.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := mysql.ParseDSN(rootDSN)
	if err != nil {
		return err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	r := strings.NewReplacer("{user}", "`"+strings.ReplaceAll(aq.User, "`", "``")+"`", "{password}", myLiteral(aq.Password.Reveal()))
	for _, q := range myAuthQuerySQL {
		q = r.Replace(q)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("demo: installing the auth_query view: %w", err)
		}
	}
	return nil
}

// demoAuthQueryTry is the "Try" line for the database-only user of a cluster with auth_query.
func demoAuthQueryTry(cl *topology.Cluster, addr string) string {
	if !cl.AuthQuery.Enabled() {
		return ""
	}
	if cl.Engine == topology.EngineMySQL {
		host, port, _ := net.SplitHostPort(addr)
		return fmt.Sprintf("  mariadb -h %s -P %s -u %s -p%s app -e 'SELECT CURRENT_USER()'   # a user only the database knows (auth_query)\n",
			host, port, demoDBUser, demoDBPassword)
	}
	return fmt.Sprintf("  psql 'postgres://%s:%s@%s/app?sslmode=disable' -c 'SELECT current_user'   # a role only the database knows (auth_query)\n",
		demoDBUser, demoDBPassword, addr)
}

func pgLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func myLiteral(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
