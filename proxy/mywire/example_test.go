package mywire_test

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/baton-proxy/baton/proxy/mywire"
)

// A backend's response to "SELECT 1; DO 1" (two results, DEPRECATE_EOF negotiated), read
// from the stream and tracked to its end.
func ExampleTracker() {
	caps := mywire.ClientProtocol41 | mywire.ClientTransactions | mywire.ClientDeprecateEOF
	more := mywire.OK{Status: mywire.StatusAutocommit | mywire.StatusMoreResultsExists}
	last := mywire.OK{Status: mywire.StatusAutocommit}

	var column []byte
	for _, s := range []string{"def", "", "", "", "1", ""} {
		column = mywire.AppendLenEncString(column, s)
	}
	column = append(column, 0x0c, 63, 0, 1, 0, 0, 0, 8, 0x81, 0, 0, 0, 0)

	var stream []byte
	seq := byte(1)
	for _, p := range [][]byte{{1}, column, mywire.AppendLenEncString(nil, "1")} {
		stream, seq = mywire.AppendPacket(stream, seq, p)
	}
	stream = mywire.AppendOKAsEOF(stream, seq, more, caps)
	stream = mywire.AppendOK(stream, seq+1, last, caps)

	r := mywire.NewPacketReader(bufio.NewReader(bytes.NewReader(stream)), 1<<20)
	tr := mywire.NewTracker(mywire.ComQuery, caps)
	for n := 1; ; n++ {
		p, _, err := r.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		done, err := tr.Feed(p)
		if err != nil {
			fmt.Println(err)
			return
		}
		if done {
			fmt.Printf("done after %d packets, in transaction: %v, autocommit: %v\n", n,
				tr.Status()&mywire.StatusInTrans != 0, tr.Status()&mywire.StatusAutocommit != 0)
			return
		}
	}
	// Output: done after 5 packets, in transaction: false, autocommit: true
}

// Splitting and joining a payload larger than one packet.
func ExampleAppendPacket() {
	payload := bytes.Repeat([]byte{'x'}, mywire.MaxPayload+10)
	wire, next := mywire.AppendPacket(nil, 0, payload)
	r := mywire.NewPacketReader(bufio.NewReader(bytes.NewReader(wire)), 32<<20)
	got, seq, err := r.Next()
	fmt.Println(len(wire)-len(payload), next, seq, len(got) == len(payload), err)
	// Output: 8 2 1 true <nil>
}
