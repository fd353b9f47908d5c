package router

// Catalog tells the classifier how volatile a function is. The proxy loads it from the
// primary's pg_proc (see PGCatalogQuery and PGCatalog); tests use small fakes.
//
// Implementations must be safe for concurrent use: every session's classification calls
// Volatility without a lock.
type Catalog interface {
	// Volatility returns pg_proc.provolatile for schema.name: 'i' (immutable), 's' (stable)
	// or 'v' (volatile). schema "" means the name was not qualified. ok is false when the
	// function is unknown.
	Volatility(schema, name string) (vol byte, ok bool)
}

// PGCatalogQuery returns one row per function in the database: nspname, proname,
// provolatile (as text). Feed each row to (*PGCatalog).Add. Run it on the primary: a function
// created there is not yet on a lagging replica.
const PGCatalogQuery = `SELECT n.nspname::text, p.proname::text, p.provolatile::text
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace`

// PGCatalog is a Catalog built from the rows of PGCatalogQuery.
//
// Build it with NewPGCatalog and Add from one goroutine, then publish it (for example with
// (*PGClassifier).SetCatalog) and never call Add again: after publication it is read-only and
// safe for any number of concurrent readers.
type PGCatalog struct {
	exact map[qualName]byte // schema.name
	path  map[string]byte   // name in pg_catalog or public (the default search_path)
	any   map[string]byte   // name in any schema
}

type qualName struct{ schema, name string }

var _ Catalog = (*PGCatalog)(nil)

// NewPGCatalog returns an empty catalog.
func NewPGCatalog() *PGCatalog {
	return &PGCatalog{
		exact: make(map[qualName]byte),
		path:  make(map[string]byte),
		any:   make(map[string]byte),
	}
}

// Add records the volatility of schema.name. Overloads share a name: the most volatile one
// wins. A vol other than 'i', 's' or 'v' is recorded as 'v' (fail closed). Add is not safe for
// concurrent use and must not be called once the catalog is shared.
func (c *PGCatalog) Add(schema, name string, vol byte) {
	vol = normVol(vol)
	k := qualName{schema, name}
	c.exact[k] = maxVol(c.exact[k], vol)
	if schema == "pg_catalog" || schema == "public" {
		c.path[name] = maxVol(c.path[name], vol)
	}
	c.any[name] = maxVol(c.any[name], vol)
}

// Volatility implements Catalog. An unqualified name is resolved the way the default
// search_path does it: pg_catalog and public first (the most volatile of the two, since
// overload resolution may pick either), then any schema (the most volatile of all).
func (c *PGCatalog) Volatility(schema, name string) (byte, bool) {
	if c == nil {
		return 0, false
	}
	if schema != "" {
		v, ok := c.exact[qualName{schema, name}]
		return v, ok
	}
	if v, ok := c.path[name]; ok {
		return v, true
	}
	v, ok := c.any[name]
	return v, ok
}

// Len is the number of distinct schema-qualified function names.
func (c *PGCatalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.exact)
}

// Equal reports whether c and o hold the same functions with the same volatility. The proxy
// can use it to skip SetCatalog (which empties the cache) when a refresh changed nothing.
func (c *PGCatalog) Equal(o *PGCatalog) bool {
	if c.Len() != o.Len() {
		return false
	}
	for k, v := range c.exact {
		if w, ok := o.exact[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// normVol maps anything that is not 'i' or 's' to 'v'.
func normVol(v byte) byte {
	if v == 'i' || v == 's' {
		return v
	}
	return 'v'
}

// maxVol returns the more volatile of a and b; the zero byte means "none yet".
func maxVol(a, b byte) byte {
	rank := func(v byte) int {
		switch v {
		case 0:
			return 0
		case 'i':
			return 1
		case 's':
			return 2
		}
		return 3
	}
	if rank(a) >= rank(b) {
		return a
	}
	return b
}
