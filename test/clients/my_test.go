package clients

import "testing"

// Set-up SQL of the MySQL/MariaDB scenarios ({T} is the scenario's table).
const (
	myStd = `DROP TABLE IF EXISTS {T};
CREATE TABLE {T} (id int PRIMARY KEY, v varchar(50));
INSERT INTO {T} VALUES (1, 'one'), (2, 'two'), (3, 'three');`

	myTypes = `DROP TABLE IF EXISTS {T};
CREATE TABLE {T} (id int PRIMARY KEY, i bigint, n decimal(12,3), s text CHARACTER SET utf8mb4, b blob,
  ts timestamp(6) NULL, dt datetime(6), j json, f double, bo boolean);
INSERT INTO {T} VALUES
  (1, 9007199254740993, 12345.678, 'grüße 🐘 ünïcode', x'deadbeef00', '2024-02-29 13:14:15.123456',
   '2024-02-29 13:14:15.123456', '{"k": [1, "x", null], "u": "é"}', 1.5, true),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, -1, -0.001, '', x'', '1970-01-02 00:00:00', '1000-01-01 00:00:00', '[]', -0.25, false);`
)

// TestMySQL runs every MySQL/MariaDB client through baton and directly and compares.
func TestMySQL(t *testing.T) {
	t.Parallel()
	for _, c := range []*client{mariadbCLI, goMySQLClient, pymysqlClient, mysqlclientClient, mysql2Client, mariaDBJClient} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // clients never share tables; -parallel (GOMAXPROCS) bounds how many run at once
			runClient(t, c)
		})
	}
}
