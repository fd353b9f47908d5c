package pgproxy

import (
	"reflect"
	"testing"
)

func TestParseOptions(t *testing.T) {
	got := parseOptions("-c search_path=a,b --statement-timeout=5s -c  work_mem=64MB -x ignored")
	want := [][2]string{{"search_path", "a,b"}, {"statement_timeout", "5s"}, {"work_mem", "64MB"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:      `'plain'`,
		`it's`:       `'it''s'`,
		`back\slash`: `E'back\\slash'`,
	} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
	if got := quoteIdent(`a"b`); got != `"a""b"` {
		t.Errorf("quoteIdent: %s", got)
	}
}

func TestDeallocName(t *testing.T) {
	for q, want := range map[string]string{
		"DEALLOCATE s1":              "s1",
		"  deallocate prepare S1 ; ": "s1",
		`DEALLOCATE "Mixed""Q"`:      `Mixed"Q`,
		"DEALLOCATE ALL":             "",
		"DEALLOCATE PREPARE all":     "",
		"DEALLOCATE s1; SELECT 1":    "",
		"SELECT 'DEALLOCATE s1'":     "",
	} {
		if got := deallocName(q); got != want {
			t.Errorf("deallocName(%q) = %q, want %q", q, got, want)
		}
	}
}
