package mywire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestAppendPacketSplitAndJoin(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		parts []int // payload length of every wire part
	}{
		{"empty", 0, []int{0}},
		{"small", 10, []int{10}},
		{"one below max", MaxPayload - 1, []int{MaxPayload - 1}},
		{"exactly max", MaxPayload, []int{MaxPayload, 0}},
		{"max plus one", MaxPayload + 1, []int{MaxPayload, 1}},
		{"twice max", 2 * MaxPayload, []int{MaxPayload, MaxPayload, 0}},
		{"20 MiB", 20 << 20, []int{MaxPayload, 20<<20 - MaxPayload}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pattern := make([]byte, 251) // a prime length: parts do not line up with it
			for i := range pattern {
				pattern[i] = byte(i)
			}
			payload := bytes.Repeat(pattern, tt.size/len(pattern)+1)[:tt.size]
			const first = 250
			wire, next := AppendPacket([]byte("pre"), first, payload)
			if string(wire[:3]) != "pre" {
				t.Fatal("dst prefix lost")
			}
			if want := byte(first + len(tt.parts)); next != want {
				t.Fatalf("nextSeq = %d, want %d", next, want)
			}
			// Walk the parts.
			b := wire[3:]
			for i, n := range tt.parts {
				if len(b) < 4 {
					t.Fatalf("part %d missing", i)
				}
				got := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
				if got != n || b[3] != byte(first+i) {
					t.Fatalf("part %d: length %d seq %d, want %d seq %d", i, got, b[3], n, byte(first+i))
				}
				b = b[4+n:]
			}
			if len(b) != 0 {
				t.Fatalf("%d trailing bytes", len(b))
			}
			bufSizes := []int{16, 4096, 1 << 16}
			if tt.size > 1<<20 {
				bufSizes = []int{1 << 16} // the small buffers are slow under -race and prove nothing more
			}
			for _, bufSize := range bufSizes {
				r := NewPacketReader(bufio.NewReaderSize(bytes.NewReader(append(wire[3:], wire[3:]...)), bufSize), 0)
				for k := 0; k < 2; k++ {
					got, seq, err := r.Next()
					if err != nil {
						t.Fatalf("buf %d: Next: %v", bufSize, err)
					}
					if !bytes.Equal(got, payload) || seq != next-1 {
						t.Fatalf("buf %d: got %d bytes seq %d, want %d bytes seq %d", bufSize, len(got), seq, len(payload), next-1)
					}
				}
				if _, _, err := r.Next(); err != io.EOF {
					t.Fatalf("buf %d: at end: %v, want io.EOF", bufSize, err)
				}
			}
			got, seq, err := ReadPacket(bytes.NewReader(wire[3:]), 0)
			if err != nil || !bytes.Equal(got, payload) || seq != next-1 {
				t.Fatalf("ReadPacket: %d bytes seq %d err %v", len(got), seq, err)
			}
		})
	}
}

func TestPacketReaderErrors(t *testing.T) {
	big, _ := AppendPacket(nil, 0, make([]byte, MaxPayload+5))
	tests := []struct {
		name string
		wire []byte
		max  int
		want func(error) bool
	}{
		{"too large single", []byte{10, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 5, isTooLarge},
		{"too large joined", big, MaxPayload + 4, isTooLarge},
		{"truncated header", []byte{10, 0}, 0, isUnexpectedEOF},
		{"truncated body", []byte{10, 0, 0, 0, 1, 2}, 0, isUnexpectedEOF},
		{"truncated second part", big[:MaxPayload+4+2], 0, isUnexpectedEOF},
		{"second part out of order", func() []byte {
			b := append([]byte(nil), big...)
			b[4+MaxPayload+3] = 7
			return b
		}(), 0, isFormatError},
		{"clean end", nil, 0, func(err error) bool { return err == io.EOF }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewPacketReader(bufio.NewReaderSize(bytes.NewReader(tt.wire), 64), tt.max)
			_, _, err := r.Next()
			if !tt.want(err) {
				t.Fatalf("Next: %v", err)
			}
			_, _, err = ReadPacket(bytes.NewReader(tt.wire), tt.max)
			if !tt.want(err) {
				t.Fatalf("ReadPacket: %v", err)
			}
		})
	}
}

func isTooLarge(err error) bool      { return errors.Is(err, ErrPacketTooLarge) }
func isUnexpectedEOF(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }
func isFormatError(err error) bool {
	var fe *FormatError
	return errors.As(err, &fe)
}

// ReadPacket must not read past the packet: a TLS handshake may follow on the same socket.
func TestReadPacketDoesNotReadAhead(t *testing.T) {
	wire, _ := AppendPacket(nil, 1, []byte("hello"))
	wire = append(wire, "TLS-bytes"...)
	r := bytes.NewReader(wire)
	p, seq, err := ReadPacket(r, 100)
	if err != nil || string(p) != "hello" || seq != 1 {
		t.Fatalf("got %q %d %v", p, seq, err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "TLS-bytes" {
		t.Fatalf("rest = %q", rest)
	}
}

func TestLenEnc(t *testing.T) {
	for _, v := range []uint64{0, 1, 250, 251, 252, 0xffff, 0x10000, 0xffffff, 0x1000000, 1<<64 - 1} {
		b := AppendLenEncInt(nil, v)
		got, n, ok := ReadLenEncInt(b)
		if !ok || got != v || n != len(b) {
			t.Errorf("%d: got %d n=%d ok=%v (enc % x)", v, got, n, ok, b)
		}
		if _, _, ok := ReadLenEncInt(b[:len(b)-1]); ok && len(b) > 1 {
			t.Errorf("%d: truncated encoding accepted", v)
		}
	}
	for _, b := range [][]byte{nil, {0xfb}, {0xff}, {0xfc, 1}, {0xfd, 1, 2}, {0xfe, 1, 2, 3, 4, 5, 6, 7}} {
		if _, _, ok := ReadLenEncInt(b); ok {
			t.Errorf("% x accepted", b)
		}
	}
	s := AppendLenEncString([]byte{9}, "hello")
	got, n, ok := ReadLenEncString(s[1:])
	if !ok || string(got) != "hello" || n != 6 {
		t.Fatalf("string: %q %d %v", got, n, ok)
	}
	if _, _, ok := ReadLenEncString([]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'x'}); ok {
		t.Fatal("huge string length accepted")
	}
}
