package router

import "testing"

// FuzzClassifyMy: no input may panic; answers are stable; the lexical pass, when it decides,
// says exactly what the structural pass says; a replica verdict carries no primary-only
// effect; and no text can hide a statement appended on a line of its own.
func FuzzClassifyMy(f *testing.F) {
	for _, c := range allMyCases() {
		f.Add(c.sql)
	}
	cl := NewMyClassifier(256, WithAllowedFunctions(myAllowed...))
	structOnly := NewMyClassifier(0, WithAllowedFunctions(myAllowed...))
	structOnly.structOnly = true
	f.Fuzz(func(t *testing.T, sql string) {
		got := cl.Classify(sql)
		if again := cl.Classify(sql); again != got {
			t.Fatalf("unstable: %s then %s", fmtMyClass(got), fmtMyClass(again))
		}
		if s := structOnly.Classify(sql); s != got {
			t.Fatalf("lexical pass %s, structural pass %s", fmtMyClass(got), fmtMyClass(s))
		}
		if got.Reason == "" {
			t.Fatal("empty reason")
		}
		if got.Route == Replica && (got.Pin != 0 || got.Unpin != 0 || got.SessionState || got.CopyIn ||
			got.Tx != TxNone && got.Tx != TxBeginReadOnly) {
			t.Fatalf("replica verdict with primary-only effects: %s", fmtMyClass(got))
		}
		if got.Unpin&got.Pin != 0 {
			t.Fatalf("pins and unpins the same state: %s", fmtMyClass(got))
		}
		if w := cl.Classify(sql + "\n;DELETE FROM t"); w.Route != Primary {
			t.Fatalf("appended DELETE hidden: %s", fmtMyClass(w))
		}
	})
}
