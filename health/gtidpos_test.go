package health

import "testing"

func TestMergeMariaGTIDs(t *testing.T) {
	tests := []struct {
		name, a, b, want string
		wantErr          bool
	}{
		{"both empty", "", "", "", false},
		{"first only", "0-1-5", "", "0-1-5", false},
		{"higher sequence wins, its server id kept", "0-1-5", "0-2-7", "0-2-7", false},
		{"lower sequence loses", "0-2-9", "0-1-7", "0-2-9", false},
		{"domains merged and sorted", "2-1-3, 0-1-4", "1-3-8", "0-1-4,1-3-8,2-1-3", false},
		{"not a GTID", "0-1-5", "abc", "", true},
		{"quote rejected", "0-1-5'", "", "", true},
		{"too many fields", "0-1-5-6", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeMariaGTIDs(tt.a, tt.b)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("MergeMariaGTIDs(%q, %q) = %q, %v; want %q (error %v)", tt.a, tt.b, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMariaGTIDCovers(t *testing.T) {
	tests := []struct {
		have, want  string
		covered, ok bool
	}{
		{"0-1-10", "0-1-10", true, true},
		{"0-1-10", "0-2-11", false, true},
		{"0-1-10,1-1-3", "1-1-3", true, true},
		{"0-1-10", "1-1-1", false, true},
		{"0-1-10", "", true, true},
		{"garbage", "0-1-1", false, false},
	}
	for _, tt := range tests {
		c, ok := MariaGTIDCovers(tt.have, tt.want)
		if c != tt.covered || ok != tt.ok {
			t.Errorf("MariaGTIDCovers(%q, %q) = %v, %v; want %v, %v", tt.have, tt.want, c, ok, tt.covered, tt.ok)
		}
	}
}
