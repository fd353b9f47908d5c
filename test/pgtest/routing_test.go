package pgtest

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

var modes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"cache-statement", pgx.QueryExecModeCacheStatement},
	{"cache-describe", pgx.QueryExecModeCacheDescribe},
	{"describe-exec", pgx.QueryExecModeDescribeExec},
	{"exec", pgx.QueryExecModeExec},
}

func TestReadsGoToReplicasWritesToPrimary(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := connect(t, m.mode)
			tbl := "rw_" + strings.ReplaceAll(m.name, "-", "_")
			port, replica := where(t, c, ctx, "")
			if !replica || port == pg.Primary.Port {
				t.Fatalf("a plain read ran on port %d (replica=%v); want a replica", port, replica)
			}
			if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+tbl+" (id int primary key, who int)"); err != nil {
				t.Fatal(err)
			}
			var who int
			if err := c.QueryRow(ctx, "INSERT INTO "+tbl+" VALUES (1, inet_server_port()) ON CONFLICT (id) DO UPDATE SET who = excluded.who RETURNING who").Scan(&who); err != nil {
				t.Fatal(err)
			}
			if who != pg.Primary.Port {
				t.Fatalf("the write ran on port %d; primary is %d", who, pg.Primary.Port)
			}
			hp, hr := where(t, c, ctx, "/* baton:primary */ ")
			if hr || hp != pg.Primary.Port {
				t.Fatalf("primary hint ran on %d (replica=%v)", hp, hr)
			}
		})
	}
}
