package mytest

import (
	"bytes"
	"crypto/md5"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
)

func TestPreparedHundredExecutionsBetweenWrites(t *testing.T) {
	ctx := ctxT(t)
	tbl, logTbl := unique("ps100"), unique("ps100log")
	db := open(t, "")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, v VARCHAR(20))")
	mustExec(t, db, "CREATE TABLE "+logTbl+" (n INT PRIMARY KEY, who INT)")
	mustExec(t, db, "INSERT INTO "+tbl+" VALUES (1, 'x')")
	waitReplicated(t)
	c := conn(t, "")
	rd, err := c.PrepareContext(ctx, "SELECT CONCAT(v, ?), @@port FROM "+tbl+" WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	wr, err := c.PrepareContext(ctx, "INSERT INTO "+logTbl+" VALUES (?, @@port)")
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	for i := 0; i < 100; i++ {
		if _, err := wr.ExecContext(ctx, i); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		var s string
		var port int
		if err := rd.QueryRowContext(ctx, "-"+strconv.Itoa(i), 1).Scan(&s, &port); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if s != "x-"+strconv.Itoa(i) {
			t.Fatalf("read %d returned %q", i, s)
		}
		wantReplica(t, fmt.Sprintf("prepared read %d", i), port)
	}
	var n, lo, hi int
	if err := primaryRoot(t).QueryRowContext(ctx, "SELECT COUNT(*), MIN(who), MAX(who) FROM "+logTbl).Scan(&n, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Fatalf("%d prepared writes landed; want 100", n)
	}
	wantPrimary(t, "the prepared writes", lo)
	wantPrimary(t, "the prepared writes", hi)
}

func TestPreparedInAndOutOfTransaction(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("pstx")
	mustExec(t, open(t, ""), "CREATE TABLE "+tbl+" (id INT PRIMARY KEY)")
	waitReplicated(t)
	c := conn(t, "")
	cnt, err := c.PrepareContext(ctx, "SELECT COUNT(*), @@port FROM "+tbl+" WHERE id > ?")
	if err != nil {
		t.Fatal(err)
	}
	defer cnt.Close()
	ins, err := c.PrepareContext(ctx, "INSERT INTO "+tbl+" VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	read := func(st *sql.Stmt) (n, port int) {
		t.Helper()
		if err := st.QueryRowContext(ctx, 0).Scan(&n, &port); err != nil {
			t.Fatal(err)
		}
		return n, port
	}
	n, port := read(cnt)
	wantReplica(t, "the prepared read before the transaction", port)
	for round, end := range []string{"ROLLBACK", "COMMIT"} {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, 10+round); err != nil {
			t.Fatalf("the prepared insert in a transaction: %v", err)
		}
		in, port := read(tx.StmtContext(ctx, cnt))
		wantPrimary(t, "the prepared read in the transaction", port)
		if in != n+1 {
			t.Fatalf("inside the transaction the prepared read counts %d; want %d (its own insert)", in, n+1)
		}
		if end == "ROLLBACK" {
			err = tx.Rollback()
		} else {
			err = tx.Commit()
			n++
		}
		if err != nil {
			t.Fatal(err)
		}
		waitReplicated(t)
		out, port := read(cnt)
		wantReplica(t, "the prepared read after "+end, port)
		if out != n {
			t.Fatalf("after %s the prepared read counts %d; want %d", end, out, n)
		}
	}
}

// stmtCount is the sum of Prepared_stmt_count over every node.
func stmtCount(t *testing.T) int {
	t.Helper()
	total := 0
	for _, node := range my.Nodes() {
		db, err := sql.Open("mysql", node.RootDSN())
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var n int
		err = db.QueryRowContext(ctxT(t), "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").Scan(&name, &n)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

func TestPreparedCloseAndReprepare(t *testing.T) {
	ctx := ctxT(t)
	c := conn(t, "")
	wantReplica(t, "the session", where(t, c, ctx, ""))
	before := stmtCount(t)
	const rounds = 30
	for i := 0; i < rounds; i++ {
		st, err := c.PrepareContext(ctx, "SELECT ? + 1, @@port")
		if err != nil {
			t.Fatalf("prepare %d: %v", i, err)
		}
		var v, port int
		if err := st.QueryRowContext(ctx, i).Scan(&v, &port); err != nil || v != i+1 {
			t.Fatalf("execution %d: %d, %v", i, v, err)
		}
		wantReplica(t, "a re-prepared read", port)
		if i%3 == 0 { // also on the primary: a write in between and a statement in a transaction
			tx, err := c.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.StmtContext(ctx, st).QueryRowContext(ctx, i).Scan(&v, &port); err != nil {
				t.Fatal(err)
			}
			wantPrimary(t, "the statement in a transaction", port)
			tx.Commit()
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// COM_STMT_CLOSE reached every node that had the statement.
	if after := stmtCount(t); after-before > rounds/3 {
		t.Fatalf("Prepared_stmt_count grew from %d to %d over %d prepare/close rounds: statements leak on the backends", before, after, rounds)
	}
	// A closed statement id is unknown, as on the server.
	w := wireLogin(t, baton.Inst.Clusters()[0].Addr().String())
	id := w.prepare("SELECT 1")
	w.mustWrite(0, binary.LittleEndian.AppendUint32([]byte{wireComStmtClose}, id))
	w.mustWrite(0, append(binary.LittleEndian.AppendUint32([]byte{wireComExecute}, id), 0, 1, 0, 0, 0))
	w.expectErr("executing a closed statement", 1, 1243)
	w.ping()
}

// prepare sends COM_STMT_PREPARE and reads its whole answer; it returns the statement id.
func (w *wireConn) prepare(q string) uint32 {
	w.t.Helper()
	w.mustWrite(0, append([]byte{wireComPrepare}, q...))
	p, _ := w.mustRead("COM_STMT_PREPARE")
	if len(p) < 12 || p[0] != 0 {
		w.t.Fatalf("COM_STMT_PREPARE answered %q (%v)", p, decodeErr(p))
	}
	id := binary.LittleEndian.Uint32(p[1:])
	cols, params := binary.LittleEndian.Uint16(p[5:]), binary.LittleEndian.Uint16(p[7:])
	for _, n := range []uint16{params, cols} {
		if n == 0 {
			continue
		}
		for i := uint16(0); i <= n; i++ { // definitions, then EOF
			w.mustRead("COM_STMT_PREPARE definitions")
		}
	}
	return id
}

func TestLongData40MiB(t *testing.T) {
	ctx := ctxT(t)
	tbl := unique("longdata")
	// Arguments above maxAllowedPacket/(params+1) go as COM_STMT_SEND_LONG_DATA.
	c := conn(t, "maxAllowedPacket=16777216")
	mustExec(t, c, "CREATE TABLE "+tbl+" (id INT PRIMARY KEY, b LONGBLOB)")
	blobs := map[int][]byte{
		1: bytes.Repeat([]byte("0123456789abcdef"), 40<<20/16),
		2: bytes.Repeat([]byte("fedcba9876543210"), 20<<20/16+3),
	}
	blobs[1][0], blobs[1][16<<20-8], blobs[1][len(blobs[1])-1] = 0x00, 0xff, 0xfe
	blobs[2][7] = 0
	root := primaryRoot(t)
	longData := func() (n int) {
		t.Helper()
		var name string
		if err := root.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Com_stmt_send_long_data'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := longData()
	ins, err := c.PrepareContext(ctx, "INSERT INTO "+tbl+" VALUES (?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	for _, id := range []int{1, 2} { // twice on one statement: the long data must not carry over
		if _, err := ins.ExecContext(ctx, id, blobs[id]); err != nil {
			t.Fatalf("inserting blob %d (%d bytes) with long data: %v", id, len(blobs[id]), err)
		}
	}
	// 40 MiB and 20 MiB in packets of at most 16 MiB: at least 3 + 2 COM_STMT_SEND_LONG_DATA.
	if n := longData() - before; n < 5 {
		t.Fatalf("the primary counted %d COM_STMT_SEND_LONG_DATA; want at least 5 (the driver's long data path)", n)
	}
	for id, b := range blobs {
		var n int
		var sum string
		if err := root.QueryRowContext(ctx, "SELECT LENGTH(b), MD5(b) FROM "+tbl+" WHERE id = ?", id).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		want := md5.Sum(b)
		if n != len(b) || sum != hex.EncodeToString(want[:]) {
			t.Fatalf("blob %d on the primary: %d bytes, md5 %s; want %d bytes, md5 %x", id, n, sum, len(b), want)
		}
	}
	waitReplicated(t)
	var got []byte
	var port int
	if err := c.QueryRowContext(ctx, "SELECT b, @@port FROM "+tbl+" WHERE id = ?", 1).Scan(&got, &port); err != nil {
		t.Fatalf("reading 40 MiB back: %v", err)
	}
	if !bytes.Equal(got, blobs[1]) {
		t.Fatalf("the 40 MiB blob changed on the way back (%d bytes)", len(got))
	}
	wantReplica(t, "the blob read", port)
	wantReplica(t, "a read after the long data", where(t, c, ctx, ""))
}
