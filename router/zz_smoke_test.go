package router

import ("testing"; "fmt")

func TestZZSmoke(t *testing.T) {
	c := NewPGClassifier(nil, 100)
	p := NewPGClassifier(nil, 0); p.parserOnly = true
	for _, q := range []string{
		"SELECT 1", "select count(*) from t where a = 1", "SELECT * FROM t FOR UPDATE", "SELECT substring(a for 2) FROM t",
		"BEGIN READ ONLY", "SET search_path TO x", "SELECT nextval('s')", "SELECT pg_advisory_lock(1)",
		"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "SELECT f(1)", "COPY t TO STDOUT", "COPY t FROM STDIN",
		"EXPLAIN ANALYZE DELETE FROM t", "SELECT set_config('a','b',false)", "SELECT set_config('a','b',true)",
		"/* baton:replica */ SELECT f(1)", "SELECT 1; SELECT 2", "BEGIN; SELECT 1", "SELEC 1", "", "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", "SELECT * INTO TEMP x FROM t",
	} {
		a, b := c.Classify(q), p.Classify(q)
		fmt.Printf("%-60q %+v\n%-60s %+v\n", q, a, "", b)
	}
}
