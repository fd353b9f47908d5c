package router

// The word table: one open-addressing hash table that gives, for every word the MySQL
// classifier cares about, its keyword code and what it means before '('. The lexer looks each
// word up once; the scanner then reads the token's flags instead of consulting maps.

// Word flags (myTok.fn).
const (
	mfSafe    uint8 = 1 << iota // a built-in function safe on a replica
	mfSym                       // a built-in the server recognises only with '(' right after the name
	mfSyntax                    // a reserved word: before '(' it is syntax, never a call
	mfType                      // a non-reserved type name
	mfSpecial                   // a function of mySpecialFuncs
)

// myWordMax bounds the length of the words in the table.
const myWordMax = 40

type myWordEntry struct {
	name string
	kw   myKw
	fn   uint8
}

const myWordBits = 12

var myWords = func() *[1 << myWordBits]myWordEntry {
	t := new([1 << myWordBits]myWordEntry)
	add := func(name string, kw myKw, fn uint8) {
		if len(name) > myWordMax {
			panic("BUG: word table: " + name + " is too long")
		}
		h := myWordHash([]byte(name))
		for t[h].name != "" && t[h].name != name {
			h = (h + 1) & (1<<myWordBits - 1)
		}
		t[h].name = name
		if kw != kwNone {
			t[h].kw = kw
		}
		t[h].fn |= fn
	}
	for k, name := range myKwNames {
		if k != 0 {
			add(name, myKw(k), 0)
		}
	}
	for set, fl := range map[*map[string]struct{}]uint8{&mySafeSet: mfSafe, &mySymSet: mfSym,
		&mySyntaxSet: mfSyntax, &myTypeSet: mfType} {
		for w := range *set {
			add(w, kwNone, fl)
		}
	}
	for w := range mySpecialFuncs {
		add(w, kwNone, mfSpecial)
	}
	n := 0
	for i := range t {
		if t[i].name != "" {
			n++
		}
	}
	if n > len(t)/2 {
		panic("BUG: word table too full")
	}
	return t
}()

// myWordHash is FNV-1a over the (lower-case) bytes, reduced to the table size.
func myWordHash(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return (h ^ h>>myWordBits) & (1<<myWordBits - 1)
}

// myLookup returns the keyword code and flags of the word w (any case).
func myLookup(w string) (myKw, uint8) {
	if len(w) > myWordMax {
		return kwNone, 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint32(c)) * 16777619
	}
	h = (h ^ h>>myWordBits) & (1<<myWordBits - 1)
	for {
		e := &myWords[h]
		if e.name == "" {
			return kwNone, 0
		}
		if len(e.name) == len(w) && eqLower(w, e.name) {
			return e.kw, e.fn
		}
		h = (h + 1) & (1<<myWordBits - 1)
	}
}

// eqLower reports whether w equals the lower-case word lw, ignoring the case of ASCII letters
// in w. len(w) == len(lw).
func eqLower(w, lw string) bool {
	for i := 0; i < len(lw); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lw[i] {
			return false
		}
	}
	return true
}
