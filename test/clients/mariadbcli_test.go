package clients

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// mariadbCLI runs the mariadb command-line client in batch mode with a script on standard
// input (one session); --force goes on after an error, as psql does without ON_ERROR_STOP.
var mariadbCLI = &client{
	name: "mariadb-cli",
	need: needCmd("mariadb", "mariadb-client"),
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		s, ok := mariadbScripts[sc.name]
		if !ok {
			panic("BUG: mariadb CLI has no scenario " + sc.name)
		}
		// --skip-ssl: plaintext to baton (no tls section) and to the nodes (which offer TLS)
		// alike, as the other clients connect; a cut TLS stream reads as ERROR 2026, not 2013.
		args := []string{"--no-defaults", "--protocol=TCP", "--skip-ssl", "-h", tg.host, "-P", strconv.Itoa(tg.port),
			"-u", tg.user, "-p" + tg.password, "--default-character-set=utf8mb4", "--batch", "--force", "--show-warnings", "--column-names", tg.db}
		if s.kill == "" {
			return runProc(ctx, "", strings.ReplaceAll(s.script, "{T}", T), nil, "mariadb", args...)
		}
		// The scenario's statement is killed by KILL <id> on the node that runs it, from a root
		// connection to that node, as an operator (or a failover fence) would.
		res := make(chan string, 1)
		go func() {
			node, id, err := waitMyRunning(ctx, s.kill)
			if err != nil {
				res <- "kill: " + err.Error()
				return
			}
			db, err := sql.Open("mysql", my.Nodes()[node].RootDSN())
			if err != nil {
				res <- "kill: " + err.Error()
				return
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
				res <- "kill: " + err.Error()
				return
			}
			res <- "killed"
		}()
		o := runProc(ctx, "", strings.ReplaceAll(s.script, "{T}", T), nil, "mariadb", args...)
		return o + <-res + "\n"
	},
	scens: []scenario{
		{name: "basic", setup: myTypes},
		{name: "errors", setup: myStd, want: []string{"ERROR 1064 (42000)", "ERROR 1062 (23000)", "ERROR 1365 (22012)"}},
		{name: "tx", setup: myStd},
		{name: "prepared", setup: myStd},
		{name: "read_only_tx_write", setup: myStd, want: []string{"ERROR 1792 (25006)"}, broken: "found by test/clients: warning 1290 after 1792 in a read-only transaction on a replica"},
		{name: "warnings", setup: myStd, want: []string{"1365"}},
		{name: "row_count", setup: myStd, want: []string{"ROW_COUNT()\n2\n"}},
		{name: "killed_backend", setup: myStd, want: []string{"killed", "ERROR 2013 (HY000) at line 3: Lost connection"}},
	},
}

type mariadbScript struct {
	script string
	kill   string // marker of the statement to KILL while it runs
}

var mariadbScripts = map[string]mariadbScript{
	"basic": {script: `SELECT * FROM {T} ORDER BY id;
SELECT 1 AS a, 2.50 AS b, 'ünï 🐘' AS c, NULL AS d, CAST('2001-02-03' AS DATE) AS e, JSON_OBJECT('a', 1) AS f;
SELECT HEX(b), JSON_EXTRACT(j, '$.k[1]') FROM {T} ORDER BY id;
`},
	"errors": {script: `SELEC 1;
INSERT INTO {T} VALUES (1, 'dup');
INSERT INTO {T} VALUES (1/0, 'x');
SELECT * FROM no_such_table_x;
SELECT count(*) FROM {T};
`},
	"tx": {script: `BEGIN;
INSERT INTO {T} VALUES (10, 'ten');
ROLLBACK;
START TRANSACTION;
INSERT INTO {T} VALUES (11, 'eleven');
INSERT INTO {T} VALUES (1, 'dup');
COMMIT;
SELECT id, v FROM {T} ORDER BY id;
START TRANSACTION READ ONLY;
SELECT count(*) FROM {T};
COMMIT;
`},
	// A write in a read-only transaction fails with 1792 either way; on a replica the
	// statement also leaves warning 1290 (--read-only) that the primary does not.
	"read_only_tx_write": {script: `START TRANSACTION READ ONLY;
SELECT count(*) FROM {T};
INSERT INTO {T} VALUES (12, 'x');
COMMIT;
`},
	"prepared": {script: `PREPARE p FROM 'SELECT v FROM {T} WHERE id = ?';
SET @i = 2;
` + strings.Repeat("EXECUTE p USING @i;\n", 12) + `DEALLOCATE PREPARE p;
EXECUTE p USING @i;
`},
	// issue 9 MySQL item 4.
	"warnings": {script: `SELECT CAST('abc' AS INT) + 1/0 AS w FROM {T} WHERE id = 1;
SHOW WARNINGS;
SELECT 1/0;
SELECT @@warning_count;
SHOW COUNT(*) WARNINGS;
`},
	// issue 9 MySQL item 6.
	"row_count": {script: `INSERT INTO {T} VALUES (6, 'six'), (7, 'seven');
SELECT ROW_COUNT();
`},
	// issue 9 MySQL item 5: the backend is killed while it runs the client's statement.
	// Inside a transaction, so baton cannot hide the loss by retrying the read elsewhere.
	"killed_backend": {kill: "killed_backend_marker", script: `BEGIN;
SELECT 1;
SELECT SLEEP(5) AS killed_backend_marker FROM {T} WHERE id = 1;
SELECT 2;
`},
}
