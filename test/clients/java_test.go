package clients

import (
	"context"
	"fmt"
)

// javaRun runs one of the java/ programs. The JVM's time zone is fixed so that timestamps print
// the same whatever the machine's.
func javaRun(ctx context.Context, class, jar string, args ...string) string {
	return runProc(ctx, "", "", nil, "java", append([]string{"-Duser.timezone=UTC", "-Dfile.encoding=UTF-8", "-Dsun.stdout.encoding=UTF-8", "-Xshare:auto", "-XX:TieredStopAtLevel=1",
		"-cp", javaClasspath(jar), class}, args...)...)
}

// pgJDBCClient is pgJDBC (java/PgJdbc.java). Scenario options go into the JDBC URL.
var pgJDBCClient = &client{
	name: "pgjdbc",
	pg:   true,
	need: needJava("PgJdbc", pgJDBCJar, "libpostgresql-jdbc-java"),
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		url := fmt.Sprintf("jdbc:postgresql://%s/%s?user=%s&password=%s&sslmode=disable", tg.addr(), tg.db, tg.user, tg.password)
		if sc.name == "autosave" {
			url += "&autosave=always"
		}
		return javaRun(ctx, "PgJdbc", pgJDBCJar, sc.name, url, T)
	},
	scens: []scenario{
		{name: "basic", setup: pgTypes},
		{name: "errors", setup: pgStd, want: []string{"42601", "23505", "22012"}},
		{name: "tx", setup: pgStd},
		{name: "prepared", setup: pgStd},
		{name: "batch", setup: pgStd, want: []string{"batch: [1, 1, 1"}},
		{name: "autosave", setup: pgStd, want: []string{"after the failure", "committed"}},
		{name: "read_only", setup: pgStd, want: []string{"String:thirty", "25006"}},
	},
}

// mariaDBJClient is MariaDB Connector/J (java/MariaJ.java).
var mariaDBJClient = &client{
	name: "connector-j",
	need: needJava("MariaJ", mariaDBJJar, "libmariadb-java"),
	run: func(ctx context.Context, tg target, sc scenario, T string) string {
		url := fmt.Sprintf("jdbc:mariadb://%s/%s?user=%s&password=%s", tg.addr(), tg.db, tg.user, tg.password)
		switch sc.name {
		case "server_prepared":
			url += "&useServerPrepStmts=true"
		case "rewrite_batch":
			url += "&rewriteBatchedStatements=true"
		}
		return javaRun(ctx, "MariaJ", mariaDBJJar, sc.name, url, T)
	},
	scens: []scenario{
		{name: "basic", setup: myTypes},
		{name: "errors", setup: myStd, want: []string{"1064", "1062", "1365"}},
		{name: "tx", setup: myStd},
		{name: "server_prepared", setup: myStd},
		{name: "rewrite_batch", setup: myStd, want: []string{"batch: ["}},
		{name: "cancel", setup: myStd, want: []string{"interrupted: true"}},
		{name: "query_timeout", setup: myStd, want: []string{"timed out: true"}},
	},
}
