package mytest

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
)

// rawLogin opens a raw protocol connection to baton as app (mysql_native_password).
func rawLogin(t *testing.T) (net.Conn, *mywire.PacketReader, []byte, uint32) {
	t.Helper()
	c, err := net.Dial("tcp", baton.Inst.Clusters()[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := mywire.NewPacketReader(bufio.NewReader(c), 1<<20)
	p, _, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := mywire.DecodeHandshake(p)
	if err != nil {
		t.Fatal(err)
	}
	caps := uint32(mywire.ClientProtocol41 | mywire.ClientSecureConnection | mywire.ClientPluginAuth |
		mywire.ClientLongPassword | mywire.ClientConnectWithDB | mywire.ClientTransactions | mywire.ClientDeprecateEOF)
	resp := &mywire.HandshakeResponse{Caps: caps, MaxPacket: 1 << 24, Charset: 45, User: "app",
		AuthResponse: mywire.NativePasswordScramble("app", hs.Salt), Database: "app", AuthPlugin: "mysql_native_password"}
	out, _ := mywire.AppendPacket(nil, 1, mywire.AppendHandshakeResponse(nil, resp))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	if p, _, err = r.Next(); err != nil || p[0] != 0x00 {
		t.Fatalf("login: %q %v", p, err)
	}
	return c, r, hs.Salt, caps
}

func changeUserPacket(user, password, db string, salt []byte) []byte {
	auth := mywire.NativePasswordScramble(password, salt)
	p := []byte{mywire.ComChangeUser}
	p = append(append(p, user...), 0)
	p = append(append(p, byte(len(auth))), auth...)
	p = append(append(p, db...), 0)
	p = append(p, 45, 0)
	p = append(append(p, "mysql_native_password"...), 0)
	out, _ := mywire.AppendPacket(nil, 0, p)
	return out
}

func TestChangeUser(t *testing.T) {
	c, r, salt, caps := rawLogin(t)
	// Pin the session (a user variable), then COM_CHANGE_USER must reset it.
	out, _ := mywire.AppendPacket(nil, 0, append([]byte{mywire.ComQuery}, "SET @pinned = 1"...))
	c.Write(out)
	if p, _, err := r.Next(); err != nil || p[0] != 0x00 {
		t.Fatalf("SET @pinned: %q %v", p, err)
	}
	c.Write(changeUserPacket("app", "app", "app", salt))
	p, _, err := r.Next()
	if err != nil || p[0] != 0x00 {
		t.Fatalf("COM_CHANGE_USER with the right password: %q %v", p, err)
	}
	// The session starts afresh: the user variable is gone, and reads go to a replica again.
	out, _ = mywire.AppendPacket(nil, 0, append([]byte{mywire.ComQuery}, "SELECT @@port"...))
	c.Write(out)
	tr := mywire.NewTracker(mywire.ComQuery, caps)
	var rows [][]byte
	for {
		p, _, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, append([]byte(nil), p...))
		done, err := tr.Feed(p)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	if tr.Err() != nil || len(rows) < 3 {
		t.Fatalf("SELECT after COM_CHANGE_USER: %v, %d packets", tr.Err(), len(rows))
	}
	port, _, ok := mywire.ReadLenEncString(rows[2]) // column count, column definition, row
	if !ok {
		t.Fatalf("row packet %q", rows[2])
	}
	p1 := 0
	for _, ch := range port {
		p1 = p1*10 + int(ch-'0')
	}
	wantReplica(t, "a read after COM_CHANGE_USER", p1)

	// A wrong password: ERR 1045 and the connection is closed.
	c.Write(changeUserPacket("app", "wrong", "app", salt))
	p, _, err = r.Next()
	if err != nil || p[0] != 0xff {
		t.Fatalf("COM_CHANGE_USER with a wrong password: %q %v", p, err)
	}
	if e, _ := mywire.DecodeERR(p, caps); e.Code != 1045 {
		t.Fatalf("got error %d, want 1045", e.Code)
	}
	if _, _, err := r.Next(); err == nil {
		t.Fatal("the connection stayed open after a failed COM_CHANGE_USER")
	}
}
