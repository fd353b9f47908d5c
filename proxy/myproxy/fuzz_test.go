package myproxy

import (
	"testing"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
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

// FuzzStatementShapes feeds arbitrary statement texts to the lexical helpers of transaction
// pooling (client text, hostile): no panic, and their answers agree with one another.
func FuzzStatementShapes(f *testing.F) {
	for _, q := range []string{"SET @a = 1, @`b` := 'x'", "SELECT ROW_COUNT() AS rc", "CREATE TEMPORARY TABLE db.t (x INT)",
		"DROP TABLE IF EXISTS a, `b`", "SELECT GET_LOCK('n', 1)", "PREPARE s FROM 'SELECT 1'", "SELECT '\\'", "@", "/*", "'"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		toks, ok := sqlTokens(q)
		if !ok && toks != nil {
			t.Fatal("tokens with a failed lex")
		}
		if vars, ok := replayableUserSet(q); ok && len(vars) == 0 {
			t.Fatal("a replayable SET that assigns nothing")
		}
		if _, col, ok := lastStatementQuery(q); ok && col == "" {
			t.Fatal("no column name")
		}
		usesTables(q)
		var ps pinState
		if ok {
			ps.follow(toks, router.Class{Pin: router.PinTempTable | router.PinAdvisoryLock | router.PinPrepare | router.PinUserVar})
		}
	})
}
