package router_test

import (
	"fmt"

	"github.com/baton-proxy/baton/router"
)

func ExamplePGClassifier() {
	cat := router.NewPGCatalog() // in the proxy: rows of router.PGCatalogQuery
	cat.Add("public", "report_total", 's')
	cat.Add("public", "touch_session", 'v')
	cl := router.NewPGClassifier(cat, 10000)
	for _, sql := range []string{
		"SELECT report_total($1)",
		"SELECT touch_session($1)",
		"SELECT * FROM jobs LIMIT 1 FOR UPDATE SKIP LOCKED",
		"BEGIN READ ONLY",
		"CREATE TEMP TABLE scratch (id int)",
		"/* baton:primary */ SELECT 1",
	} {
		c := cl.Classify(sql)
		fmt.Printf("%-8s %-32s tx=%d pin=%d\n", c.Route, c.Reason, c.Tx, c.Pin)
	}
	// Output:
	// replica  select                           tx=0 pin=0
	// primary  volatile-function:touch_session  tx=0 pin=0
	// primary  locking-clause                   tx=0 pin=0
	// replica  begin-read-only                  tx=2 pin=0
	// primary  temp-table                       tx=0 pin=1
	// primary  hint                             tx=0 pin=0
}

// Multi-statement texts are replica only if every statement is; flags are the union.
func ExamplePGClassifier_multi() {
	cl := router.NewPGClassifier(nil, 0)
	for _, sql := range []string{
		"SELECT 1; SELECT lower('A')",
		"SELECT 1; UPDATE t SET a = 1",
		"CREATE TEMP TABLE x (a int); LISTEN jobs",
		"/* baton:replica */ SELECT app_fn(1)", // unknown function: the hint decides
		"/* baton:replica */ DELETE FROM t",    // a hint never overrides a write
	} {
		c := cl.Classify(sql)
		fmt.Printf("%-8s %-12s multi=%v hint=%v pin=%d\n", c.Route, c.Reason, c.Multi, c.Hint, c.Pin)
	}
	// Output:
	// replica  select       multi=true hint=false pin=0
	// primary  write        multi=true hint=false pin=0
	// primary  temp-table   multi=true hint=false pin=3
	// replica  hint         multi=false hint=true pin=0
	// primary  write        multi=false hint=false pin=0
}
