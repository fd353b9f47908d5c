package pins

import (
	"reflect"
	"testing"

	"github.com/baton-proxy/baton/router"
)

func TestReasonsMatchPinBits(t *testing.T) {
	for i, want := range []router.Pin{router.PinTempTable, router.PinListen, router.PinAdvisoryLock, router.PinPrepare,
		router.PinHoldCursor, router.PinLockTables, router.PinUserVar, router.PinOther} {
		if got := Names(want); len(got) != 1 || got[0] != Reasons[i] {
			t.Fatalf("Names(%#x) = %v; want [%s]", want, got, Reasons[i])
		}
	}
}

func TestPublish(t *testing.T) {
	var c Counts
	var a, b Session
	steps := []struct {
		s         *Session
		pins      router.Pin
		wantFirst router.Pin
		want      map[string]int64
	}{
		{&a, router.PinTempTable, router.PinTempTable, map[string]int64{"temp_table": 1}},
		{&b, router.PinTempTable | router.PinListen, router.PinTempTable | router.PinListen, map[string]int64{"temp_table": 2, "listen": 1}},
		{&a, router.PinTempTable, 0, map[string]int64{"temp_table": 2, "listen": 1}},
		{&a, 0, 0, map[string]int64{"temp_table": 1, "listen": 1}},
		{&a, router.PinTempTable, 0, map[string]int64{"temp_table": 2, "listen": 1}}, // logged once per session
		{&b, 0, 0, map[string]int64{"temp_table": 1}},
		{&a, 0, 0, map[string]int64{}},
	}
	for i, st := range steps {
		if first := c.Publish(st.s, st.pins); first != st.wantFirst {
			t.Fatalf("step %d: first %#x; want %#x", i, first, st.wantFirst)
		}
		got := map[string]int64{}
		for k, v := range c.Snapshot() {
			if v != 0 {
				got[k] = v
			}
		}
		if !reflect.DeepEqual(got, st.want) {
			t.Fatalf("step %d: counts %v; want %v", i, got, st.want)
		}
	}
}
