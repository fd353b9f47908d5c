package pgproxy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/baton-proxy/baton/proxy/pgwire"
)

// Frontend frames for the tests (pgproto3 encodes them as a client would).
func parseF(name, q string, types ...uint32) []byte {
	b := append(append([]byte(name), 0), q...)
	b = append(b, 0, 0, byte(len(types)))
	for _, t := range types {
		b = append(b, byte(t>>24), byte(t>>16), byte(t>>8), byte(t))
	}
	return pgwire.AppendFrame(nil, 'P', b)
}

func bindF(portal, name string, params int) []byte {
	b := append(append([]byte(portal), 0), name...)
	b = append(b, 0, 0, 0, 0, byte(params)) // no format codes, params parameters
	for range params {
		b = append(b, 0xff, 0xff, 0xff, 0xff) // NULL
	}
	b = append(b, 0, 0) // no result formats
	return pgwire.AppendFrame(nil, 'B', b)
}

func describeF(kind byte, name string) []byte {
	return pgwire.AppendFrame(nil, 'D', append(append([]byte{kind}, name...), 0))
}

func execF() []byte { return pgwire.AppendFrame(nil, 'E', []byte{0, 0, 0, 0, 0}) }

func cat(fs ...[]byte) []byte { return bytes.Join(fs, nil) }

// types lists the message types of a reply, in order.
func types(b []byte) string {
	var out []byte
	for f := range eachFrame(b) {
		out = append(out, f[0])
	}
	return string(out)
}

func TestListenReply(t *testing.T) {
	fail := pgwire.AppendError(nil, pgwire.SevError, "57P03", "no primary")
	cases := []struct {
		name   string
		frames []byte
		fail   []byte
		want   string
	}{
		{"simple", pgwire.AppendQuery(nil, "LISTEN a"), nil, "CZ"},
		{"simple failed", pgwire.AppendQuery(nil, "LISTEN a"), fail, "EZ"},
		{"extended", cat(parseF("", "LISTEN a"), bindF("", "", 0), describeF('P', ""), execF(), syncFrame), nil, "12nCZ"},
		{"describe statement", cat(parseF("s", "LISTEN a"), describeF('S', "s"), bindF("", "s", 0), execF(), syncFrame), nil, "1tn2CZ"},
		{"extended failed", cat(parseF("", "LISTEN a"), bindF("", "", 0), execF(), describeF('P', ""), syncFrame), fail, "12EZ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := listenReply(c.frames, "LISTEN", c.fail)
			if types(got) != c.want {
				t.Fatalf("reply %q; want %q", types(got), c.want)
			}
			if c.fail == nil && !bytes.Contains(got, []byte("LISTEN\x00")) {
				t.Fatalf("no LISTEN command tag in %q", got)
			}
			if got[len(got)-1] != 'I' {
				t.Fatalf("ReadyForQuery status %q; want I", got[len(got)-1])
			}
		})
	}
}

func TestListenGroupText(t *testing.T) {
	s := &session{stmts: map[string]*stmt{"known": {query: "LISTEN k"}, "sel": {query: "SELECT 1"}}}
	cases := []struct {
		name   string
		frames []byte
		want   string
	}{
		{"parse bind execute", cat(parseF("", "LISTEN a"), bindF("", "", 0), describeF('P', ""), execF(), syncFrame), "LISTEN a"},
		{"prepared earlier", cat(bindF("", "known", 0), execF(), syncFrame), "LISTEN k"},
		{"parse only", cat(parseF("p", "LISTEN a"), describeF('S', "p"), syncFrame), ""},
		{"declared parameter types", cat(parseF("", "LISTEN a", 23), bindF("", "", 0), execF(), syncFrame), ""},
		{"bind with parameters", cat(parseF("", "LISTEN a"), bindF("", "", 1), execF(), syncFrame), ""},
		{"two executes", cat(parseF("", "LISTEN a"), bindF("", "", 0), execF(), execF(), syncFrame), ""},
		{"another statement parsed", cat(parseF("x", "SELECT 1"), parseF("", "LISTEN a"), bindF("", "", 0), execF(), syncFrame), ""},
		{"unknown statement", cat(bindF("", "nope", 0), execF(), syncFrame), ""},
		{"name taken", cat(parseF("sel", "LISTEN a"), bindF("", "sel", 0), execF(), syncFrame), ""},
		{"close", cat(parseF("", "LISTEN a"), bindF("", "", 0), execF(), pgwire.AppendCloseStmt(nil, "x"), syncFrame), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := s.listenGroupText(c.frames); got != c.want {
				t.Fatalf("listenGroupText = %q; want %q", got, c.want)
			}
		})
	}
	// A statement the group parsed exists for the session afterwards.
	s.listenGroupText(cat(parseF("new", "LISTEN n"), bindF("", "new", 0), execF(), syncFrame))
	if st := s.stmts["new"]; st == nil || st.query != "LISTEN n" || st.srv == "" {
		t.Fatalf("the parsed statement was not recorded: %+v", st)
	}
}

func TestBindParams(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		if got := bindParams(pgwire.Body(bindF("p", "s", n))); got != n {
			t.Errorf("bindParams = %d; want %d", got, n)
		}
	}
	if got := bindParams([]byte("p\x00s")); got != -1 {
		t.Errorf("truncated Bind: %d; want -1", got)
	}
}

func notification(ch, payload string) []byte {
	b := append([]byte{0, 0, 0, 1}, ch...)
	b = append(append(append(b, 0), payload...), 0)
	return pgwire.AppendFrame(nil, 'A', b)
}

func TestNoteQueue(t *testing.T) {
	var q noteQueue
	a1, b1, a2 := notification("a", "1"), notification("b", "1"), notification("a", "2")
	for _, f := range [][]byte{a1, b1, a2} {
		if !q.add(f, 1000) {
			t.Fatal("add refused under the limit")
		}
	}
	q.pause(true)
	if f, lost := q.take(true); f != nil || lost != nil {
		t.Fatalf("paused queue delivered %q", f)
	}
	q.pause(false)
	if f := q.takeFrames(false); f != nil {
		t.Fatalf("held (in a transaction) but delivered %q", f)
	}
	q.purge(map[string]bool{"a": true}, false)
	if f, _ := q.take(true); !bytes.Equal(f, b1) {
		t.Fatalf("after purging a: %q; want only b's", f)
	}
	// Overflow: the session is lost with FATAL 53200, once; nothing is queued after.
	for q.add(a1, 3*len(a1)) {
	}
	_, lost := q.take(true)
	if !pgwire.ErrorFatal(pgwire.Body(lost)) || pgwire.ErrorCode(pgwire.Body(lost)) != "53200" ||
		!strings.Contains(string(lost), "notifications") {
		t.Fatalf("overflow: %q", lost)
	}
	if f, lost := q.take(true); f != nil || lost != nil {
		t.Fatalf("after the loss: %q, %q", f, lost)
	}
	q.add(a1, 1000)
	q.lose(pgwire.AppendError(nil, pgwire.SevFatal, "08006", "x"))
	if f, lost := q.take(true); f != nil || lost != nil {
		t.Fatalf("an ended queue took more: %q, %q", f, lost)
	}
}
