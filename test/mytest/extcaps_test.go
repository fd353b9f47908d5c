package mytest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/test/cluster"
)

// columnDefs connects to addr as a MariaDB client asking for extended metadata, runs q and
// returns the negotiated extended capabilities, what the server offered, and the raw column
// definitions of the result.
func columnDefs(t *testing.T, addr, q string) (ext, offered uint32, defs [][]byte) {
	t.Helper()
	cc := rawConn(t, addr, mywire.ClientConfig{ExtCaps: mywire.MariaDBClientExtendedMetadata})
	answer, _ := rawQuery(t, cc, q)
	cols, _, _ := mywire.ReadLenEncInt(answer[0])
	return cc.ExtCaps, cc.ServerExtCaps, answer[1 : 1+cols]
}

// TestMariaDBExtendedMetadata (issue 9, item 1): baton offers MariaDB's extended metadata when
// the servers do, and relays it: a JSON column's definition says "json" (node mysql2 then
// parses JSON columns), byte for byte as directly; the column baton writes itself (SELECT
// CONNECTION_ID()) has the same definition as the server's. The mariadb CLI shows the same
// column types.
func TestMariaDBExtendedMetadata(t *testing.T) {
	where(t, open(t, ""), ctxT(t), "") // baton has met the servers
	batonAddr := baton.Inst.Clusters()[0].Addr().String()
	for _, q := range []string{"SELECT JSON_OBJECT('a', 1) AS j, 2 AS n", "SELECT CONNECTION_ID()"} {
		dExt, dOffered, dDefs := columnDefs(t, my.Primary.Addr(), q)
		bExt, bOffered, bDefs := columnDefs(t, batonAddr, q)
		if dExt != mywire.MariaDBClientExtendedMetadata || bExt != dExt {
			t.Fatalf("%s: extended capabilities negotiated: direct %#x, baton %#x (offered: direct %#x, baton %#x)", q, dExt, bExt, dOffered, bOffered)
		}
		if bOffered&^dOffered != 0 || bOffered&(mywire.MariaDBClientProgress|mywire.MariaDBClientCacheMetadata|mywire.MariaDBClientStmtBulkOperations) != 0 {
			t.Fatalf("baton offers %#x; the server %#x: only what both offer and baton relays", bOffered, dOffered)
		}
		if len(dDefs) != len(bDefs) {
			t.Fatalf("%s: %d columns direct, %d through baton", q, len(dDefs), len(bDefs))
		}
		for i := range dDefs {
			if !bytes.Equal(dDefs[i], bDefs[i]) {
				t.Fatalf("%s: column %d:\ndirect %q\nbaton  %q", q, i, dDefs[i], bDefs[i])
			}
		}
		if strings.HasPrefix(q, "SELECT JSON") && !bytes.Contains(bDefs[0], []byte("json")) {
			t.Fatalf("the JSON column's definition has no extended type: %q", bDefs[0])
		}
	}
	var outs [2]string
	for i, addr := range []string{my.Primary.Addr(), batonAddr} {
		out, errOut, code := cliAt(t, addr, "--column-type-info", "--table", "SELECT JSON_OBJECT('a', 1) AS j")()
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", addr, code, errOut)
		}
		outs[i] = out
	}
	if outs[0] != outs[1] || !strings.Contains(outs[0], "(format=json)") {
		t.Fatalf("mariadb --column-type-info:\ndirect %s\nbaton  %s", outs[0], outs[1])
	}
}

// TestExtendedMetadataBeforeAnyStatement: a freshly started baton learns the servers'
// extended capabilities by itself, so clients that connect before any session ran a statement
// are offered them too.
func TestExtendedMetadataBeforeAnyStatement(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, nil)
	addr := b.Inst.Clusters()[0].Addr().String()
	cluster.Eventually(t, 10*time.Second, "baton's greeting offers extended metadata", func() (bool, error) {
		cc := rawConn(t, addr, mywire.ClientConfig{ExtCaps: mywire.MariaDBClientExtendedMetadata})
		return cc.ExtCaps == mywire.MariaDBClientExtendedMetadata, nil
	})
	if n := b.Inst.Clusters()[0].My.Metrics().ToPrimary.Load() + b.Inst.Clusters()[0].My.Metrics().ToReplica.Load(); n != 0 {
		t.Fatalf("%d statements ran: the test needs none", n)
	}
}
