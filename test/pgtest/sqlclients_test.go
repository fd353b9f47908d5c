package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

func TestDatabaseSQL(t *testing.T) {
	ctx := ctxT(t)
	tbl := createTable(t, "stdlib", "id int PRIMARY KEY, who int")
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(3)

	var port int
	var rep bool
	if err := db.QueryRowContext(ctx, whereSQL).Scan(&port, &rep); err != nil {
		t.Fatal(err)
	}
	wantReplica(t, "database/sql read", port, rep)
	var who int
	if err := db.QueryRowContext(ctx, "INSERT INTO "+tbl+" VALUES ($1, inet_server_port()) RETURNING who", 1).Scan(&who); err != nil {
		t.Fatal(err)
	}
	wantPrimary(t, "database/sql write", who, false)

	// A sql.Tx stays on the primary and sees its own writes.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, whereSQL).Scan(&port, &rep); err != nil {
		t.Fatal(err)
	}
	wantPrimary(t, "a read in a sql.Tx", port, rep)
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES ($1, inet_server_port())", 2); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*), inet_server_port() FROM "+tbl).Scan(&n, &port); err != nil {
		t.Fatal(err)
	}
	wantPrimary(t, "a count in a sql.Tx", port, false)
	if n != 2 {
		t.Fatalf("the sql.Tx saw %d rows; want 2", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, direct(t, pg.Primary), "SELECT count(*) FROM "+tbl+" WHERE who = $1", pg.Primary.Port); got != 2 {
		t.Fatalf("the primary holds %d rows; want 2", got)
	}

	// A read-only sql.Tx runs on one replica.
	rtx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var p1 int
	if err := rtx.QueryRowContext(ctx, whereSQL).Scan(&p1, &rep); err != nil {
		t.Fatal(err)
	}
	wantReplica(t, "a read-only sql.Tx", p1, rep)
	if err := rtx.QueryRowContext(ctx, whereSQL).Scan(&port, &rep); err != nil {
		t.Fatal(err)
	}
	if port != p1 {
		t.Fatalf("a read-only sql.Tx moved from port %d to %d", p1, port)
	}
	if err := rtx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// psql runs /usr/bin/psql against baton with stdin as its standard input and returns its output.
func psql(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/psql", append([]string{url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(cmd.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestPsql(t *testing.T) {
	tbl := createTable(t, "psql", "id int PRIMARY KEY, who int DEFAULT inet_server_port()")

	out := psql(t, "", "-c", whereSQL)
	f := strings.Split(out, "|")
	if len(f) != 2 {
		t.Fatalf("psql printed %q", out)
	}
	port, _ := strconv.Atoi(f[0])
	wantReplica(t, "psql -c SELECT", port, f[1] == "t")

	// Several statements in one -c are one Query message: they run together on the primary.
	out = psql(t, "", "-c", "INSERT INTO "+tbl+" (id) VALUES (1); SELECT inet_server_port(), count(*) FROM "+tbl)
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:] // psql prints every result: "INSERT 0 1", then the row
	}
	if want := fmt.Sprintf("%d|1", pg.Primary.Port); out != want {
		t.Fatalf("multi-statement -c printed %q; want %q", out, want)
	}

	// \copy from psql's standard input lands on the primary.
	psql(t, "10\n11\n12\n", "-c", `\copy `+tbl+` (id) FROM pstdin`)
	p := direct(t, pg.Primary)
	if got := queryInt(t, p, "SELECT count(*) FROM "+tbl+" WHERE id >= 10 AND who = $1", pg.Primary.Port); got != 3 {
		t.Fatalf(`the primary holds %d rows from \copy; want 3`, got)
	}
}
