package router

import (
	"sync"
	"sync/atomic"
)

// PGClassifier classifies PostgreSQL statement texts (see the package documentation for the
// rules). It is safe for concurrent use by any number of sessions: Classify takes no lock on
// the fast path and a shard read lock on a cache hit.
type PGClassifier struct {
	state      atomic.Pointer[pgState]
	cacheSize  int
	parserOnly bool // tests: skip the fast path
}

// pgState is swapped as a whole so that a classification never mixes a catalog with a cache
// filled under another one.
type pgState struct {
	cat   Catalog
	cache *classCache
}

// NewPGClassifier returns a classifier that resolves functions through cat (nil: builtin
// knowledge only) and caches up to cacheSize parser-decided texts (<= 0: no cache).
func NewPGClassifier(cat Catalog, cacheSize int) *PGClassifier {
	c := &PGClassifier{cacheSize: cacheSize}
	c.SetCatalog(cat)
	return c
}

// SetCatalog replaces the catalog (nil: builtin knowledge only) and empties the cache. It is
// safe to call while other goroutines classify; they finish with the catalog they started with.
func (c *PGClassifier) SetCatalog(cat Catalog) {
	c.state.Store(&pgState{cat: cat, cache: newClassCache(c.cacheSize)})
}

// Classify returns the routing class of sql, which may hold several statements. It never
// panics and never fails: whatever it cannot prove read-only routes to the primary.
func (c *PGClassifier) Classify(sql string) Class {
	st := c.state.Load()
	if cl, ok := classifyText(st.cat, sql, false, c.parserOnly); ok {
		return cl
	}
	if cl, ok := st.cache.get(sql); ok {
		return cl
	}
	cl, _ := classifyText(st.cat, sql, true, c.parserOnly)
	st.cache.put(sql, cl)
	return cl
}

// tokPool recycles token buffers between classifications.
var tokPool = sync.Pool{New: func() any { b := make([]token, 0, 64); return &b }}

// maxPooledToks: larger token buffers are left to the garbage collector.
const maxPooledToks = 1 << 14

// classifyText classifies sql. Without parse, ok is false as soon as a statement needs the
// parser; with parse, ok is always true.
func classifyText(cat Catalog, sql string, parse, parserOnly bool) (Class, bool) {
	bp := tokPool.Get().(*[]token)
	defer func() {
		if cap(*bp) <= maxPooledToks {
			tokPool.Put(bp)
		}
	}()
	toks, info := lexPG(sql, (*bp)[:0], false)
	*bp = toks
	h := hintOf(sql)
	if info.unterminated {
		v := primary("parse-error")
		return applyHint(v.Class, false, h), true
	}
	if info.stdBackslash && !sameShape(sql, toks) {
		// The text splits differently under standard_conforming_strings = off: what runs
		// depends on a session setting; do not guess.
		return applyHint(primary("string-escape").Class, false, h), true
	}
	var a accum
	ok := true
	splitStmts(sql, toks, func(s stmt) bool {
		v, decided := verdict{}, false
		if !parserOnly {
			v, decided = fastStmt(cat, s)
		}
		if !decided {
			if !parse {
				ok = false
				return false
			}
			v = parseStmt(cat, s)
		}
		a.add(v)
		return true
	})
	if !ok {
		return Class{}, false
	}
	v := a.result()
	return applyHint(v.Class, v.soft, h), true
}

// sameShape reports whether lexing sql with standard_conforming_strings = off yields the same
// token kinds as toks.
func sameShape(sql string, toks []token) bool {
	off, _ := lexPG(sql, make([]token, 0, len(toks)), true)
	if len(off) != len(toks) {
		return false
	}
	for i := range off {
		if off[i].kind != toks[i].kind {
			return false
		}
	}
	return true
}

// verdict is a statement's Class plus what the classifier needs to combine verdicts.
type verdict struct {
	Class
	soft     bool // primary only for an unknown or volatile function: a replica hint may override
	parseErr bool // PostgreSQL rejects the text: nothing in it runs
}

func primary(reason string) verdict { return verdict{Class: Class{Route: Primary, Reason: reason}} }
func replica(reason string) verdict { return verdict{Class: Class{Route: Replica, Reason: reason}} }

// accum combines the verdicts of the statements of one text, in order.
type accum struct {
	n         int
	out       verdict
	allRep    bool
	anyTx     bool
	allSoft   bool   // every primary statement is soft
	primaryBy string // reason of the first primary statement
	firstBy   string // reason of the first statement
	parseErr  bool
}

func (a *accum) add(v verdict) {
	if a.n == 0 {
		a.allRep, a.allSoft, a.firstBy = true, true, v.Reason
	}
	a.n++
	if v.Route != Replica {
		a.allRep = false
		a.allSoft = a.allSoft && v.soft
		if a.primaryBy == "" {
			a.primaryBy = v.Reason
		}
	}
	if v.Tx != TxNone {
		a.anyTx = true
		a.out.Tx = v.Tx
	}
	a.parseErr = a.parseErr || v.parseErr
	a.out.SessionState = a.out.SessionState || v.SessionState
	a.out.ResetAll = a.out.ResetAll || v.ResetAll
	a.out.Pin |= v.Pin
	a.out.Unpin |= v.Unpin
	a.out.CopyIn = a.out.CopyIn || v.CopyIn
	a.out.CopyOut = a.out.CopyOut || v.CopyOut
}

// result: replica only if every statement is; transaction control in a multi-statement text,
// or any statement PostgreSQL would reject, makes the whole text primary.
func (a *accum) result() verdict {
	v := a.out
	switch {
	case a.n == 0:
		return primary("empty")
	case a.parseErr:
		v.Route, v.Reason = Primary, "parse-error"
	case a.n > 1 && a.anyTx:
		v.Route, v.Reason = Primary, a.primaryBy
		if v.Reason == "" {
			v.Reason = "multi-tx"
		}
	case a.allRep:
		v.Route, v.Reason = Replica, a.firstBy
	default:
		v.Route, v.Reason, v.soft = Primary, a.primaryBy, a.allSoft
	}
	v.Multi = a.n > 1
	return v
}
