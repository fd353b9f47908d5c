package mytest

import (
	"fmt"
	"testing"
)

var dsnModes = []struct{ name, params string }{
	{"server-prepared", ""},
	{"interpolate", "interpolateParams=true"},
	{"multi", "multiStatements=true"},
}

func TestReadsToReplicasWritesToPrimary(t *testing.T) {
	for i, m := range dsnModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			db := open(t, m.params)
			wantReplica(t, "a plain read", where(t, db, ctx, ""))
			tbl := fmt.Sprintf("rw_%d", i)
			if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+tbl+" (id INT PRIMARY KEY, who INT)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "REPLACE INTO "+tbl+" VALUES (?, @@port)", 1); err != nil {
				t.Fatal(err)
			}
			waitReplicated(t)
			var who, at int
			if err := db.QueryRowContext(ctx, "SELECT who, @@port FROM "+tbl+" WHERE id = ?", 1).Scan(&who, &at); err != nil {
				t.Fatal(err)
			}
			wantPrimary(t, "the write", who)
			wantReplica(t, "the read after the write", at)
			wantPrimary(t, "a primary hint", where(t, db, ctx, "/* baton:primary */ "))
		})
	}
}
