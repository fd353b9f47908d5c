package failover

import "testing"

// The fence's synchronous_standby_names keeps the operator's value, quotes and all, and nothing
// else parses as a fence.
func TestFencedStandbyNamesRoundTrip(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, own := range []*string{nil, str(""), str("ANY 1 (replica1, replica2)"), str(`FIRST 2 ("a b", "c""d", e)`), str("*")} {
		v := fencedStandbyNames(own)
		got, fenced := parseFencedStandbyNames(v)
		if !fenced {
			t.Fatalf("%q (own %v) not recognised as a fence", v, own)
		}
		if (got == nil) != (own == nil) || got != nil && *got != *own {
			t.Fatalf("%q: kept %v, want %v", v, got, own)
		}
	}
	for _, ssn := range []string{"", "baton_fenced_not", "*", "ANY 1 (baton_fenced)", `"baton_fencedX"`, `"baton_fenced`, `"x"`} {
		if _, fenced := parseFencedStandbyNames(ssn); fenced {
			t.Errorf("%q parsed as a fence", ssn)
		}
	}
}
