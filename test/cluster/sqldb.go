package cluster

import (
	"database/sql"
	"testing"
)

// OpenMySQL opens a database/sql pool for a MySQL/MariaDB DSN (through baton or to a server)
// and closes it when the test ends. The pool connects lazily.
func OpenMySQL(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
