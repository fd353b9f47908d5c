package router_test

import (
	"fmt"

	"github.com/baton-proxy/baton/router"
)

func ExampleMyClassifier() {
	cl := router.NewMyClassifier(10000, router.WithAllowedFunctions("price_with_tax"))
	for _, sql := range []string{
		"SELECT price_with_tax(price) FROM items WHERE id = ?",
		"SELECT touch_session(?)",
		"SELECT * FROM jobs LIMIT 1 FOR UPDATE SKIP LOCKED",
		"START TRANSACTION READ ONLY",
		"SET NAMES utf8mb4",
		"SELECT GET_LOCK('job', 10)",
		"SELECT 1; UPDATE t SET a = 1",
		"/* baton:replica */ SELECT touch_session(?)",
	} {
		c := cl.Classify(sql)
		fmt.Printf("%-8s %-30s tx=%d sess=%-5v pin=%d multi=%v\n", c.Route, c.Reason, c.Tx, c.SessionState, c.Pin, c.Multi)
	}
	// Output:
	// replica  select                         tx=0 sess=false pin=0 multi=false
	// primary  unknown-function:touch_session tx=0 sess=false pin=0 multi=false
	// primary  locking-clause                 tx=0 sess=false pin=0 multi=false
	// replica  begin-read-only                tx=2 sess=false pin=0 multi=false
	// primary  set                            tx=0 sess=true  pin=0 multi=false
	// primary  advisory-lock                  tx=0 sess=false pin=4 multi=false
	// primary  write                          tx=0 sess=false pin=0 multi=true
	// replica  hint                           tx=0 sess=false pin=0 multi=false
}
