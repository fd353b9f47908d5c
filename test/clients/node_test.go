package clients

import (
	"context"
	"strconv"
)

// nodePGClient is node-postgres (npm pg, node/pg.js).
var nodePGClient = &client{
	name: "node-pg",
	pg:   true,
	need: needNode,
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		return runProc(ctx, srcDir("node"), "", nil, "node", "pg.js", sc.name, tg.pgURL(), T)
	},
	scens: []scenario{
		{name: "basic", setup: pgTypes},
		{name: "errors", setup: pgStd, want: []string{"42601", "23505", "22012"}},
		{name: "tx", setup: pgStd},
		{name: "prepared", setup: pgStd, want: []string{"named insert dup: error ERROR 23505"}},
	},
}

// mysql2Client is node mysql2 (npm mysql2, node/mysql2.js).
var mysql2Client = &client{
	name: "mysql2",
	need: needNode,
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		return runProc(ctx, srcDir("node"), "", nil, "node", "mysql2.js", sc.name, tg.host, strconv.Itoa(tg.port), tg.user, tg.password, tg.db, T)
	},
	scens: []scenario{
		{name: "basic", setup: myTypes},
		{name: "errors", setup: myStd, want: []string{"1064 42000", "1062 23000", "1365 22012"}},
		{name: "tx", setup: myStd},
		{name: "execute100", setup: myStd, want: []string{"errors 0", "row: string:\"23\""}},
		{name: "json", setup: myTypes, want: []string{"query: object", "execute: object"}},
		{name: "time_zone", setup: myTypes, want: []string{"+05:00", "2024-02-29 18:14:15.123456"}},
		{name: "stream", setup: myStd + "\nINSERT INTO {T} SELECT seq, CONCAT('v', seq) FROM seq_4_to_2000;", want: []string{"streamed 2000 rows"}},
		{name: "kill_query", setup: myStd, want: []string{"equals the handshake thread id: true", "interrupted: true"}},
	},
}
