package clients

import (
	"context"
	"strconv"
)

// pyPG runs python/pg.py with one of Debian's PostgreSQL drivers.
func pyPG(driver, pkg string) *client {
	return &client{
		name: driver,
		pg:   true,
		need: needPython(driver, pkg),
		run: func(ctx context.Context, tg target, sc scenario, T string) string {
			return runProc(ctx, srcDir("python"), "", []string{"PYTHONIOENCODING=utf-8"}, debianPython, "pg.py", driver, sc.name, tg.pgURL(), T)
		},
		scens: []scenario{
			{name: "basic", setup: pgTypes},
			{name: "errors", setup: pgStd, want: []string{"42601", "23505", "22012"}},
			{name: "tx", setup: pgStd},
			{name: "prepared", setup: pgStd},
			{name: "copy", setup: pgStd, want: []string{"copy in: 3", "row: 6", `6\tsix\n`}},
			{name: "read_only_after_commit", setup: pgStd, want: []string{"'thirty'", "25006"}},
		},
	}
}

var (
	psycopgClient  = pyPG("psycopg", "python3-psycopg")
	psycopg2Client = pyPG("psycopg2", "python3-psycopg2")
)

// pyMy runs python/my.py with one of Debian's MySQL drivers.
func pyMy(driver, module, pkg string) *client {
	return &client{
		name: driver,
		need: needPython(module, pkg),
		run: func(ctx context.Context, tg target, sc scenario, T string) string {
			return runProc(ctx, srcDir("python"), "", []string{"PYTHONIOENCODING=utf-8"}, debianPython, "my.py",
				module, sc.name, tg.host, strconv.Itoa(tg.port), tg.user, tg.password, tg.db, T)
		},
		scens: []scenario{
			{name: "basic", setup: myTypes},
			{name: "errors", setup: myStd, want: []string{"1064", "1062", "1365"}},
			{name: "tx", setup: myStd},
			{name: "many", setup: myStd, want: []string{"executemany: 12"}},
			{name: "warnings", setup: myStd, want: []string{"1365"}},
			{name: "row_count", setup: myStd, want: []string{"row: 2"}},
		},
	}
}

var (
	pymysqlClient     = pyMy("pymysql", "pymysql", "python3-pymysql")
	mysqlclientClient = pyMy("mysqlclient", "MySQLdb", "python3-mysqldb")
)
