// Package clients is baton's real-client comparison suite (DESIGN §5, issue 9).
//
// TestMain starts a PostgreSQL cluster (primary + 2 streaming replicas) and a MariaDB cluster
// (primary + 2 GTID replicas), each with an in-process baton in front configured with
// consistency read_your_writes. Every test then runs one client program for one scenario twice:
// once through baton and once straight to the primary, as the same user and database, and
// compares the two outputs line by line. Any difference fails the test with a diff.
//
// The client programs are real ecosystem clients: psql, pgbench, the mariadb CLI (processes);
// pgx, lib/pq, go-sql-driver/mysql and raw pgproto3 (Go, in-process); psycopg 3, psycopg2,
// PyMySQL and mysqlclient (python/, run with Debian's /usr/bin/python3); node-postgres and
// mysql2 (node/, installed with npm ci); pgJDBC and MariaDB Connector/J (java/, compiled with
// javac into a temporary directory at test time). Each prints a canonical line-per-result
// format: result rows, command tags or affected-row counts, and errors as SQLSTATE (and MySQL
// error number) plus message. normalize (compare_test.go) removes only what legitimately differs
// between the two targets, each with its reason.
//
// Data: before each of the two runs the scenario's setup SQL recreates its own tables on the
// primary and the test waits until both replicas replayed it, so a read through baton that goes
// to a replica sees the same rows as the direct run. Inside a run, a client reads its own writes
// only in one session, which read_your_writes guarantees.
//
// Known differences (issue 9 items that are being fixed) are marked broken: such a scenario
// still runs, and the test asserts that it still differs; once it matches, the test fails with
// "now passes: remove the broken mark". Nothing is skipped: a missing client tool fails the test
// with the package to install (test/scripts/deps.sh installs all of them).
//
// Run: go test -race -count=1 ./test/clients/ (add -run 'TestPG/psql' for one client, -v to see
// each comparison, and BATON_CLIENTS_SHOW=1 with -v to see each direct run's output).
package clients
