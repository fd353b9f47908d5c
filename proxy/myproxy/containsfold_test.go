package myproxy

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// containsFold agrees with a window-by-window strings.EqualFold for ASCII words, on texts with
// mixed case, multi-byte runes that fold to ASCII letters (K, ſ) and invalid UTF-8.
func TestContainsFoldAgreesWithEqualFold(t *testing.T) {
	ref := func(s, word string) bool {
		for i := 0; i+len(word) <= len(s); i++ {
			if strings.EqualFold(s[i:i+len(word)], word) {
				return true
			}
		}
		return false
	}
	words := []string{"kill", "last_insert_id", "identity", "row_count", "use", "s", "session_track_system_variables"}
	pieces := []string{"KILL", "kiLL", "\u212aill", "\u017f", "use", "USE", "Last_Insert_ID", "row_COUNT", "_", " ", "\xff", "é", "k", "S", "identitY", "ki", "ll"}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		for _, w := range words {
			if got, want := containsFold(s, w), ref(s, w); got != want {
				t.Fatalf("containsFold(%q, %q) = %v; EqualFold windows say %v", s, w, got, want)
			}
		}
	}
}
