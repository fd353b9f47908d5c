package router

import "testing"

func TestPGListenTarget(t *testing.T) {
	cases := []struct {
		sql  string
		want ListenTarget
		ok   bool
	}{
		{"LISTEN chan1", ListenTarget{Channel: "chan1"}, true},
		{"listen MixedCase", ListenTarget{Channel: "mixedcase"}, true},
		{`LISTEN "MixedCase"`, ListenTarget{Channel: "MixedCase"}, true},
		{`LISTEN "a""b c"`, ListenTarget{Channel: `a"b c`}, true},
		{`LISTEN "*"`, ListenTarget{Channel: "*"}, true},
		{`LISTEN U&"d\0061t"`, ListenTarget{Channel: "dat"}, true},
		{"/* baton:primary */ LISTEN x ;", ListenTarget{Channel: "x"}, true},
		{"UNLISTEN chan1", ListenTarget{Unlisten: true, Channel: "chan1"}, true},
		{`UNLISTEN "*"`, ListenTarget{Unlisten: true, Channel: "*"}, true},
		{"UNLISTEN *", ListenTarget{Unlisten: true, All: true}, true},
		{"LISTEN select", ListenTarget{}, false},
		{"LISTEN a; LISTEN b", ListenTarget{}, false},
		{"LISTEN a b", ListenTarget{}, false},
		{"NOTIFY a", ListenTarget{}, false},
		{"LISTEN a123456789012345678901234567890123456789012345678901234567890123", ListenTarget{}, false},
	}
	for _, c := range cases {
		got, ok := PGListenTarget(c.sql)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("PGListenTarget(%q) = %+v, %v; want %+v, %v", c.sql, got, ok, c.want, c.ok)
		}
	}
}
