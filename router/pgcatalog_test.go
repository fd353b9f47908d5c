package router

import "testing"

func TestPGCatalogVolatility(t *testing.T) {
	c := NewPGCatalog()
	c.Add("pg_catalog", "lower", 'i')
	c.Add("public", "f", 's')
	c.Add("public", "f", 'v') // overload: the most volatile wins
	c.Add("public", "f", 'i')
	c.Add("app", "g", 's')
	c.Add("other", "g", 'v')
	c.Add("public", "h", 's')
	c.Add("app", "h", 'v') // not on the default path: unqualified h is public.h
	c.Add("public", "weird", 'x')
	tests := []struct {
		schema, name string
		vol          byte
		ok           bool
	}{
		{"", "lower", 'i', true},
		{"pg_catalog", "lower", 'i', true},
		{"public", "lower", 0, false},
		{"", "f", 'v', true},
		{"public", "f", 'v', true},
		{"", "g", 'v', true}, // only outside the path: most volatile of all schemas
		{"app", "g", 's', true},
		{"", "h", 's', true},
		{"app", "h", 'v', true},
		{"", "weird", 'v', true},
		{"", "missing", 0, false},
		{"app", "missing", 0, false},
	}
	for _, tt := range tests {
		vol, ok := c.Volatility(tt.schema, tt.name)
		if vol != tt.vol || ok != tt.ok {
			t.Errorf("Volatility(%q, %q) = %q, %v; want %q, %v", tt.schema, tt.name, vol, ok, tt.vol, tt.ok)
		}
	}
	if c.Len() != 7 {
		t.Errorf("Len = %d, want 7", c.Len())
	}
	var nilCat *PGCatalog
	if _, ok := nilCat.Volatility("", "lower"); ok || nilCat.Len() != 0 {
		t.Error("nil catalog must be empty")
	}
}

func TestPGCatalogEqual(t *testing.T) {
	a, b := NewPGCatalog(), NewPGCatalog()
	if !a.Equal(b) {
		t.Fatal("empty catalogs differ")
	}
	a.Add("public", "f", 's')
	b.Add("public", "f", 's')
	if !a.Equal(b) {
		t.Fatal("same catalogs differ")
	}
	b.Add("public", "f", 'v')
	if a.Equal(b) {
		t.Fatal("different volatility compares equal")
	}
	a.Add("public", "f", 'v')
	a.Add("public", "g", 'v')
	if a.Equal(b) || b.Equal(a) {
		t.Fatal("different function sets compare equal")
	}
}

// TestSetCatalog: a new catalog takes effect at once, including for texts cached before.
func TestSetCatalog(t *testing.T) {
	cl := NewPGClassifier(nil, 100)
	const q = "SELECT my_fn(x) FROM t WHERE y = 'a'"
	if got := cl.Classify(q); got.Route != Primary || got.Reason != "unknown-function:my_fn" {
		t.Fatalf("nil catalog: %s", fmtClass(got))
	}
	cat := NewPGCatalog()
	cat.Add("public", "my_fn", 's')
	cl.SetCatalog(cat)
	if got := cl.Classify(q); got.Route != Replica {
		t.Fatalf("stable my_fn: %s", fmtClass(got))
	}
	cat2 := NewPGCatalog()
	cat2.Add("public", "my_fn", 'v')
	cl.SetCatalog(cat2)
	if got := cl.Classify(q); got.Route != Primary || got.Reason != "volatile-function:my_fn" {
		t.Fatalf("volatile my_fn: %s", fmtClass(got))
	}
}
