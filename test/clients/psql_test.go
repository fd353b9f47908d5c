package clients

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// psqlClient runs psql once per scenario with a sequence of -c commands (one session).
// VERBOSITY=verbose makes psql print each error's SQLSTATE.
var psqlClient = &client{
	name: "psql",
	pg:   true,
	need: needCmd("psql", "postgresql-client-15"),
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		p, ok := psqlScenarios[sc.name]
		if !ok {
			panic("BUG: psql has no scenario " + sc.name)
		}
		dir, err := os.MkdirTemp("", "baton-psql-")
		if err != nil {
			return "mkdtemp: " + err.Error()
		}
		defer os.RemoveAll(dir)
		if p.file != "" {
			if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte(p.file), 0o644); err != nil {
				return err.Error()
			}
		}
		u := tg.pgURL()
		if p.options != "" {
			u += "&options=" + strings.ReplaceAll(url.QueryEscape(p.options), "+", "%20")
		}
		args := []string{"-X", "-A", "-F", "|", "-v", "VERBOSITY=verbose", "-v", "ON_ERROR_STOP=0", "-d", u}
		for _, c := range p.cmds {
			args = append(args, "-c", strings.ReplaceAll(strings.ReplaceAll(c, "{T}", T), "{FILE}", filepath.Join(dir, "data.txt")))
		}
		return runProc(ctx, dir, "", p.env, "psql", args...)
	},
	scens: []scenario{
		{name: "basic", setup: pgTypes},
		{name: "errors", setup: pgStd, want: []string{"42601", "23505", "22012"}},
		{name: "tx", setup: pgStd},
		{name: "prepared", setup: pgStd},
		{name: "copy", setup: pgStd, want: []string{"COPY 20000", "\n20003|"}},
		{name: "discard_all", want: []string{"DISCARD ALL"}},
		{name: "pgoptions_search_path", setup: pgStd, want: []string{"public,pg_catalog"}},
		{name: "serializable_read_only", setup: pgStd},
		{name: "default_serializable", setup: pgStd},
		{name: "read_only_then_read_write", setup: pgStd, want: []string{"INSERT 0 1"}},
		{name: "startup_bad_param", want: []string{`FATAL:  unrecognized configuration parameter "doesnotexist"`}},
		{name: "client_encoding_env", want: []string{"LATIN1"}},
		{name: "client_encoding_options", want: []string{"LATIN1"}},
		{name: "terminate_self", want: []string{"FATAL:  57P01"}},
		{name: "read_only_after_commit", setup: pgStd},
	},
}

type psqlScript struct {
	cmds    []string // -c arguments; {T} is the table, {FILE} a file holding file
	env     []string
	options string // the URL's options parameter
	file    string
}

var psqlScenarios = map[string]psqlScript{
	"basic": {cmds: []string{
		"SELECT * FROM {T} ORDER BY id",
		"SELECT 1 AS a, 'x' AS b, NULL AS c, 'ünï 🐘'::text AS d, 1.50::numeric AS e, '{1,NULL}'::int[] AS f",
	}},
	"errors": {cmds: []string{
		"SELEC 1",
		"INSERT INTO {T} VALUES (1, 'dup')",
		"SELECT 1/0",
		"SELECT count(*) FROM {T}",
	}},
	"tx": {cmds: []string{
		"BEGIN", "INSERT INTO {T} VALUES (10, 'ten')", "ROLLBACK",
		"BEGIN", "INSERT INTO {T} VALUES (11, 'eleven')", "INSERT INTO {T} VALUES (1, 'dup')", "SELECT 1", "COMMIT",
		"BEGIN", "INSERT INTO {T} VALUES (12, 'twelve')", "COMMIT",
		"SELECT id, v FROM {T} ORDER BY id",
	}},
	"prepared": {cmds: append(append([]string{"PREPARE p(int) AS SELECT v FROM {T} WHERE id = $1"},
		repeat("EXECUTE p(2)", 12)...), "DEALLOCATE p", "EXECUTE p(1)")},
	// issue 9 PG item 11: \copy then an immediate read of what it wrote.
	// 20,000 rows, so that a replica needs a moment to replay them: a read that does not wait for
	// the session's own COPY sees an old count.
	"copy": {file: copyRows(4, 20003), cmds: []string{
		`\copy {T} from '{FILE}'`,
		"SELECT count(*), sum(id) FROM {T}",
		`\copy (SELECT * FROM {T} WHERE id < 8 ORDER BY id) to stdout`,
	}},
	// issue 9 PG item 2.
	"discard_all": {cmds: []string{"discard all", "select 1"}},
	// issue 9 PG item 3.
	"pgoptions_search_path": {env: []string{"PGOPTIONS=-c search_path=public,pg_catalog"}, cmds: []string{
		"SHOW search_path",
		"SELECT count(*) FROM {T}",
		"SELECT '{T}'::regclass",
	}},
	// issue 9 PG item 4.
	"serializable_read_only": {cmds: []string{
		"BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY", "SELECT count(*) FROM {T}", "SHOW transaction_isolation", "COMMIT",
	}},
	"default_serializable": {cmds: []string{
		"SET default_transaction_isolation = serializable", "SELECT count(*) FROM {T}", "SHOW transaction_isolation",
		"SELECT v FROM {T} WHERE id = 1",
	}},
	"read_only_then_read_write": {cmds: []string{
		"BEGIN READ ONLY", "SET TRANSACTION READ WRITE", "INSERT INTO {T} VALUES (20, 'twenty')", "COMMIT",
		"SELECT count(*) FROM {T}",
	}},
	// issue 9 PG item 6.
	"startup_bad_param": {options: "-c doesnotexist=foo", cmds: []string{"SELECT 1"}},
	"client_encoding_env": {env: []string{"PGCLIENTENCODING=LATIN1"}, cmds: []string{
		"SHOW client_encoding", "SELECT 'grüße' AS s, length('grüße')",
	}},
	"client_encoding_options": {options: "-c client_encoding=LATIN1", cmds: []string{
		"SHOW client_encoding", "SELECT 'grüße' AS s",
	}},
	// issue 9 PG item 7.
	"terminate_self": {cmds: []string{"SELECT pg_terminate_backend(pg_backend_pid())", "SELECT 1"}},
	// issue 9 PG item 11: a read-only transaction right after a commit sees the write.
	"read_only_after_commit": {cmds: []string{
		"BEGIN", "INSERT INTO {T} VALUES (30, 'thirty')", "COMMIT",
		"BEGIN READ ONLY", "SELECT v FROM {T} WHERE id = 30", "COMMIT",
		"INSERT INTO {T} VALUES (31, 'thirty-one')",
		"START TRANSACTION READ ONLY", "SELECT count(*) FROM {T}", "COMMIT",
	}},
}

// copyRows is COPY text data: rows from..to of (id, 'v<id>').
func copyRows(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "%d\tv%d\n", i, i)
	}
	return b.String()
}

func repeat(s string, n int) []string {
	r := make([]string, n)
	for i := range r {
		r[i] = s
	}
	return r
}
