package router

import "testing"

const (
	myBenchFast = "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id " +
		"WHERE u.id = ? AND o.created_at > NOW() - INTERVAL 1 DAY ORDER BY o.created_at DESC LIMIT 10"
	myBenchWrite = "INSERT INTO events (kind, payload, created_at) VALUES (?, ?, NOW())"
	myBenchLock  = "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
	// myBenchStruct needs the structural rules: a CTE column list, a derived table's column
	// list and JSON_TABLE column types.
	myBenchStruct = "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) " +
		"SELECT d.x, jt.at FROM t, (SELECT n FROM r) AS d (x), JSON_TABLE(t.doc, '$[*]' COLUMNS (at DATETIME(6) PATH '$.at')) AS jt"
	myBenchEscaped = "SELECT * FROM people WHERE last_name = 'O\\'Brien' AND city = 'Dublin'"
)

func benchMy(b *testing.B, cl *MyClassifier, sql string, want Route) {
	b.ReportAllocs()
	for b.Loop() {
		if cl.Classify(sql).Route != want {
			b.Fatal("wrong route")
		}
	}
}

// BenchmarkMyClassifyFast: a typical read decided by the lexical pass (no cache involved).
func BenchmarkMyClassifyFast(b *testing.B) { benchMy(b, NewMyClassifier(10000), myBenchFast, Replica) }

// BenchmarkMyClassifyFastWrite: a write decided by its first word plus a scan for pins.
func BenchmarkMyClassifyFastWrite(b *testing.B) {
	benchMy(b, NewMyClassifier(10000), myBenchWrite, Primary)
}

// BenchmarkMyClassifyFastLock: a locking read.
func BenchmarkMyClassifyFastLock(b *testing.B) {
	benchMy(b, NewMyClassifier(10000), myBenchLock, Primary)
}

// BenchmarkMyClassifyFastEscaped: a backslash escape makes the classifier read the text twice
// (default and NO_BACKSLASH_ESCAPES).
func BenchmarkMyClassifyFastEscaped(b *testing.B) {
	benchMy(b, NewMyClassifier(10000), myBenchEscaped, Replica)
}

// BenchmarkMyClassifyFastParallel: the lexical pass from all CPUs (no shared lock).
func BenchmarkMyClassifyFastParallel(b *testing.B) {
	cl := NewMyClassifier(10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cl.Classify(myBenchFast)
		}
	})
}

// BenchmarkMyClassifyStructural: a text the lexical pass leaves to the structural pass, with
// the cache disabled (lexical attempt + structural pass).
func BenchmarkMyClassifyStructural(b *testing.B) {
	benchMy(b, NewMyClassifier(0), myBenchStruct, Replica)
}

// BenchmarkMyClassifyStructuralCached: the same text answered from the cache.
func BenchmarkMyClassifyStructuralCached(b *testing.B) {
	benchMy(b, NewMyClassifier(10000), myBenchStruct, Replica)
}

// BenchmarkMyClassifyStructuralOnly: the typical read through the structural pass alone.
func BenchmarkMyClassifyStructuralOnly(b *testing.B) {
	cl := NewMyClassifier(0)
	cl.structOnly = true
	benchMy(b, cl, myBenchFast, Replica)
}
