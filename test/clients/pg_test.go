package clients

import "testing"

// Set-up SQL of the PostgreSQL scenarios ({T} is the scenario's table).
const (
	pgStd = `DROP TABLE IF EXISTS {T};
CREATE TABLE {T} (id int PRIMARY KEY, v text);
INSERT INTO {T} VALUES (1, 'one'), (2, 'two'), (3, 'three');`

	pgTypes = `DROP TABLE IF EXISTS {T};
CREATE TABLE {T} (id int PRIMARY KEY, i bigint, n numeric(12,3), s text, b bytea, ts timestamptz,
  j jsonb, a int[], f float8, bo boolean);
INSERT INTO {T} VALUES
  (1, 9007199254740993, 12345.678, 'grüße 🐘 ünïcode', '\xdeadbeef00', '2024-02-29 13:14:15.123456+02',
   '{"k": [1, "x", null], "u": "é"}', '{1,2,3}', 1.5, true),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, -1, -0.001, '', '\x', '1970-01-01 00:00:00+00', '[]', '{}', -0.25, false);`
)

// TestPG runs every PostgreSQL client through baton and directly and compares.
func TestPG(t *testing.T) {
	t.Parallel()
	for _, c := range []*client{psqlClient, pgxClient, libpqClient, pgwireClient, pgbenchClient, psycopgClient, psycopg2Client, nodePGClient, pgJDBCClient} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // clients never share tables; -parallel (GOMAXPROCS) bounds how many run at once
			runClient(t, c)
		})
	}
}
