package router

import "testing"

const (
	benchFast = "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id " +
		"WHERE u.id = $1 AND o.created_at > now() - interval '1 day' ORDER BY o.created_at DESC LIMIT 10"
	benchWrite  = "INSERT INTO events (kind, payload, created_at) VALUES ($1, $2, now())"
	benchParser = "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
)

// BenchmarkClassifyFast: a typical read decided by the lexical fast path.
func BenchmarkClassifyFast(b *testing.B) {
	cl := NewPGClassifier(testCatalog(), 10000)
	b.ReportAllocs()
	for b.Loop() {
		if cl.Classify(benchFast).Route != Replica {
			b.Fatal("not replica")
		}
	}
}

// BenchmarkClassifyFastWrite: a write decided by its first keyword.
func BenchmarkClassifyFastWrite(b *testing.B) {
	cl := NewPGClassifier(testCatalog(), 10000)
	b.ReportAllocs()
	for b.Loop() {
		cl.Classify(benchWrite)
	}
}

// BenchmarkClassifyFastParallel: the fast path from all CPUs (no shared lock).
func BenchmarkClassifyFastParallel(b *testing.B) {
	cl := NewPGClassifier(testCatalog(), 10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cl.Classify(benchFast)
		}
	})
}

// BenchmarkClassifyParser: a text the fast path leaves to pg_query, with the cache disabled.
func BenchmarkClassifyParser(b *testing.B) {
	cl := NewPGClassifier(testCatalog(), 0)
	b.ReportAllocs()
	for b.Loop() {
		if cl.Classify(benchParser).Reason != "locking-clause" {
			b.Fatal("wrong verdict")
		}
	}
}

// BenchmarkClassifyParserCached: the same text answered from the cache.
func BenchmarkClassifyParserCached(b *testing.B) {
	cl := NewPGClassifier(testCatalog(), 10000)
	b.ReportAllocs()
	for b.Loop() {
		cl.Classify(benchParser)
	}
}
