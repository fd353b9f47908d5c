package pgwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzClientMessages feeds arbitrary bytes through the startup and regular message readers and
// the decoders the router uses. They must never panic, never return a frame larger than the
// limit, and always make progress or fail.
func FuzzClientMessages(f *testing.F) {
	f.Add(AppendQuery(nil, "SELECT 1"))
	f.Add(append(AppendFrame(nil, 'P', []byte("s1\x00SELECT $1\x00\x00\x01\x00\x00\x00\x17")), 'S', 0, 0, 0, 4))
	f.Add(AppendFrame(nil, 'B', []byte("\x00s1\x00\x00\x00\x00\x01\x00\x00\x00\x011\x00\x00")))
	f.Add(AppendFrame(nil, 'D', []byte("Ss1\x00")))
	f.Add(AppendCloseStmt(nil, "s1"))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47})                            // SSLRequest
	f.Add([]byte("\x00\x00\x00\x15\x00\x03\x00\x00user\x00app\x00\x00")) // StartupMessage
	f.Add([]byte{'Q', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'P', 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 4096
		// Startup phase.
		if code, pkt, err := ReadStartupPacket(bytes.NewReader(data)); err == nil {
			if len(pkt) < 4 || len(pkt) > MaxStartupPacket {
				t.Fatalf("startup packet of %d bytes accepted", len(pkt))
			}
			if code>>16 == 3 {
				DecodeStartup(pkt)
			}
		}
		// Regular messages.
		r := NewMsgReader(bufio.NewReaderSize(bytes.NewReader(data), 64), max)
		for i := 0; i < 1000; i++ {
			fr, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMessageTooLarge) {
					var fe *FormatError
					if !errors.As(err, &fe) {
						t.Fatalf("unclassified error %T: %v", err, err)
					}
				}
				return
			}
			if len(fr) < 5 || len(fr)-5 > max || int(be32(fr[1:]))+1 != len(fr) {
				t.Fatalf("bad frame of %d bytes", len(fr))
			}
			b := Body(fr)
			switch fr[0] {
			case 'Q':
				QueryMsg(b)
			case 'P':
				ParseMsg(b)
			case 'B':
				BindMsg(b)
			case 'D', 'C':
				DescribeMsg(fr[0], b)
			case 'E', 'N':
				ErrorCode(b)
			}
		}
	})
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func TestMsgReaderLimits(t *testing.T) {
	big := AppendQuery(nil, string(bytes.Repeat([]byte("x"), 5000)))
	r := NewMsgReader(bufio.NewReaderSize(bytes.NewReader(big), 64), 4096)
	if _, err := r.Next(); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversized: got %v", err)
	}
	// A frame larger than the buffer but within the limit is read whole.
	ok := AppendQuery(nil, string(bytes.Repeat([]byte("y"), 3000)))
	r = NewMsgReader(bufio.NewReaderSize(bytes.NewReader(ok), 64), 4096)
	fr, err := r.Next()
	if err != nil || !bytes.Equal(fr, ok) {
		t.Fatalf("got %d bytes, %v", len(fr), err)
	}
	// Truncated frames are unexpected EOFs, not clean EOFs.
	r = NewMsgReader(bufio.NewReaderSize(bytes.NewReader(ok[:100]), 64), 4096)
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: got %v", err)
	}
	r = NewMsgReader(bufio.NewReaderSize(bytes.NewReader([]byte{'Q', 0, 0, 0, 2}), 64), 4096)
	var fe *FormatError
	if _, err := r.Next(); !errors.As(err, &fe) {
		t.Fatalf("short length: got %v", err)
	}
}

func TestDecoders(t *testing.T) {
	name, q, err := ParseMsg([]byte("s1\x00SELECT $1\x00\x00\x01\x00\x00\x00\x17"))
	if err != nil || name != "s1" || q != "SELECT $1" {
		t.Fatalf("parse: %q %q %v", name, q, err)
	}
	if _, _, err := ParseMsg([]byte("s1\x00SELECT $1\x00\x00\x02\x00\x00\x00\x17")); err == nil {
		t.Fatal("parse with a wrong parameter count accepted")
	}
	p, s, err := BindMsg([]byte("\x00s1\x00\x00\x00\x00\x00\x00\x00"))
	if err != nil || p != "" || s != "s1" {
		t.Fatalf("bind: %q %q %v", p, s, err)
	}
	k, n, err := DescribeMsg('D', []byte("Ss1\x00"))
	if err != nil || k != 'S' || n != "s1" {
		t.Fatalf("describe: %c %q %v", k, n, err)
	}
	if _, _, err := DescribeMsg('D', []byte("Xs1\x00")); err == nil {
		t.Fatal("describe of X accepted")
	}
	e := AppendError(nil, SevError, "25006", "read only")
	if c := ErrorCode(Body(e)); c != "25006" {
		t.Fatalf("code %q", c)
	}
}
