package myproxy

import (
	"testing"

	"github.com/baton-proxy/baton/proxy/mywire"
)

// FuzzCommands feeds arbitrary command payloads to the parsers of the session's command loop:
// they must never panic or index out of range.
func FuzzCommands(f *testing.F) {
	f.Add([]byte("\x11app\x00\x14abcdefghijklmnopqrst app\x00-\x00mysql_native_password\x00"), uint16(0))
	f.Add([]byte("\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x08\x00\x01\x00\x00\x00\x00\x00\x00\x00"), uint16(1))
	f.Add([]byte("\x18\x01\x00\x00\x00\x00\x00data"), uint16(2))
	f.Add([]byte{mywire.ComChangeUser}, uint16(3))
	f.Fuzz(func(t *testing.T, p []byte, n uint16) {
		if len(p) == 0 {
			return
		}
		caps := uint32(mywire.ClientProtocol41 | mywire.ClientSecureConnection | mywire.ClientPluginAuth)
		if n&1 == 0 {
			caps &^= mywire.ClientSecureConnection
		}
		if r, err := decodeChangeUser(p, caps); err == nil && r == nil {
			t.Fatal("nil response without error")
		}
		if off := executeLayout(p, n%64); off >= len(p) {
			t.Fatalf("layout offset %d beyond %d bytes", off, len(p))
		}
		mywire.StmtID(p)
	})
}
