package router

import (
	"testing"

	"github.com/xwb1989/sqlparser"
)

// TestMyAgreesWithSQLParser is a differential check against github.com/xwb1989/sqlparser (the
// product card's MySQL parser): wherever that grammar parses a table statement and sees a write
// or a locking read, MyClassifier must route it to the primary. The parser fails on much of
// MySQL 8 / MariaDB (CTEs, window functions, FOR SHARE, START TRANSACTION READ ONLY, XA, …),
// which is why it does not decide routes itself; see doc.go.
func TestMyAgreesWithSQLParser(t *testing.T) {
	c := NewMyClassifier(1000, WithAllowedFunctions(myAllowed...))
	parsed, writes := 0, 0
	for _, tc := range allMyCases() {
		stmt, err := sqlparser.Parse(tc.sql)
		if err != nil {
			continue
		}
		parsed++
		write := false
		switch s := stmt.(type) {
		case *sqlparser.Insert, *sqlparser.Update, *sqlparser.Delete, *sqlparser.DDL, *sqlparser.DBDDL:
			write = true
		case *sqlparser.Select:
			write = s.Lock != ""
		}
		if !write {
			continue
		}
		writes++
		if got := c.Classify(tc.sql); got.Route != Primary {
			t.Errorf("%q: sqlparser sees a write or a locking read, MyClassifier routes it to the %v (%s)", tc.sql, got.Route, got.Reason)
		}
	}
	if parsed < 100 || writes < 30 {
		t.Fatalf("only %d table statements parsed (%d writes): the check proves little", parsed, writes)
	}
	t.Logf("sqlparser parsed %d of %d table statements; %d writes or locking reads all go to the primary", parsed, len(allMyCases()), writes)
}
