package mytest

import (
	"bufio"
	"database/sql"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
)

// users[].max_client_connections refuses a session over the limit with MySQL's 1203, after the
// password was checked (a wrong password still gets 1045); a session that ends frees its place.
func TestUserConnectionLimit(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		cl.Users[0].MaxClientConnections = 2
	})
	app := accountDSN(b, my.Opts.AppUser, my.Opts.AppPassword)
	db1, err := sql.Open("mysql", app)
	if err != nil {
		t.Fatal(err)
	}
	defer db1.Close()
	if err := db1.PingContext(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := loginAs(t, app); err != nil {
		t.Fatal(err)
	}
	_, err = loginAs(t, app)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1203 || string(me.SQLState[:]) != "42000" ||
		me.Message != "User "+my.Opts.AppUser+" already has more than 'max_user_connections' active connections" {
		t.Fatalf("want 1203 (42000) User app already has more than 'max_user_connections' active connections; got %v", err)
	}
	_, err = loginAs(t, accountDSN(b, my.Opts.AppUser, "wrong"))
	wantDenied(t, err, my.Opts.AppUser)
	db1.Close() // closes its connection (sql.Conn.Close would only return it to db1's pool)
	awaitAccount(t, "a freed place", 10*time.Second, func() bool {
		db, err := sql.Open("mysql", app)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return db.PingContext(ctxT(t)) == nil
	})
}

// After more failed logins from an address than the backoff lets pass, each further login from
// it waits before its password is checked.
func TestLoginBackoff(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, nil)
	bad := accountDSN(b, my.Opts.AppUser, "wrong")
	for range 12 {
		_, err := loginAs(t, bad)
		wantDenied(t, err, my.Opts.AppUser)
	}
	start := time.Now()
	_, err := loginAs(t, bad)
	wantDenied(t, err, my.Opts.AppUser)
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("the 13th failed login took %v; want the backoff's 200ms", d)
	}
}

// rawLoginAs opens a raw protocol connection to addr as user (mysql_native_password).
func rawLoginAs(t *testing.T, addr, user, password string) (net.Conn, *mywire.PacketReader, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
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
	resp := &mywire.HandshakeResponse{Caps: caps, MaxPacket: 1 << 24, Charset: 45, User: user,
		AuthResponse: mywire.NativePasswordScramble(password, hs.Salt), Database: my.Opts.AppDB, AuthPlugin: "mysql_native_password"}
	out, _ := mywire.AppendPacket(nil, 1, mywire.AppendHandshakeResponse(nil, resp))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	if p, _, err = r.Next(); err != nil || p[0] != 0x00 {
		t.Fatalf("login as %s: %q %v", user, p, err)
	}
	return c, r, hs.Salt
}

// COM_CHANGE_USER counts the session against the new user's limit (1203 when it is full) and
// frees the previous user's place.
func TestChangeUserConnectionLimit(t *testing.T) {
	b := batontest.StartMyBatonForTest(t, my, func(cl *topology.Cluster) {
		cl.Users[0].MaxClientConnections = 1 // app
		cl.Users[1].MaxClientConnections = 1 // root
	})
	addr := b.Inst.Clusters()[0].Addr().String()
	app := accountDSN(b, my.Opts.AppUser, my.Opts.AppPassword)
	db1, err := sql.Open("mysql", app)
	if err != nil {
		t.Fatal(err)
	}
	defer db1.Close()
	if err := db1.PingContext(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c, r, salt := rawLoginAs(t, addr, "root", my.Opts.RootPassword)
	c.Write(changeUserPacket(my.Opts.AppUser, my.Opts.AppPassword, my.Opts.AppDB, salt))
	p, _, err := r.Next()
	if err != nil || p[0] != 0xff {
		t.Fatalf("COM_CHANGE_USER to a user at its limit: %q %v", p, err)
	}
	if e, _ := mywire.DecodeERR(p, mywire.ClientProtocol41); e.Code != 1203 {
		t.Fatalf("got error %d %q, want 1203", e.Code, e.Message)
	}

	db1.Close()
	var changed net.Conn
	awaitAccount(t, "app's place to be free", 10*time.Second, func() bool {
		c, r, salt := rawLoginAs(t, addr, "root", my.Opts.RootPassword)
		c.Write(changeUserPacket(my.Opts.AppUser, my.Opts.AppPassword, my.Opts.AppDB, salt))
		p, _, err := r.Next()
		if err == nil && p[0] == 0x00 {
			changed = c
			return true
		}
		c.Close()
		return false
	})
	// The changed session holds app's place; root's is free again.
	_, err = loginAs(t, app)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1203 {
		t.Fatalf("app while a changed session holds its place: %v; want 1203", err)
	}
	if _, err := loginAs(t, accountDSN(b, "root", my.Opts.RootPassword)); err != nil {
		t.Fatalf("root after its session changed to app: %v", err)
	}
	changed.Close()
}
