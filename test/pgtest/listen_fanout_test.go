package pgtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-proxy/baton/test/batontest"
	"github.com/baton-proxy/baton/topology"
	"github.com/jackc/pgx/v5"
)

// LISTEN without pinning (pool_mode transaction): the sessions' LISTENs share one listening
// connection per primary and database, and every notification reaches exactly the sessions
// that listen on its channel, in order, with its payload, where a direct connection would get
// it.

func startFanOutBaton(t *testing.T) (*batontest.Baton, string) {
	t.Helper()
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) {
		cl.PoolMode = topology.PoolTransaction
		cl.Pool.MaxPerNode = 2
	})
	return b, b.URL(pg)
}

// listenerPIDs returns the primary's backends whose last statement was a LISTEN or UNLISTEN
// naming tag, with that statement.
func listenerPIDs(t *testing.T, tag string) map[int32]string {
	t.Helper()
	admin := direct(t, pg.Primary)
	rows, err := admin.Query(ctxT(t), `SELECT pid, query FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND (query ILIKE 'listen%' OR query ILIKE 'unlisten%') AND strpos(query, $1) > 0`, tag)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]string{}
	for rows.Next() {
		var pid int32
		var q string
		if err := rows.Scan(&pid, &q); err != nil {
			t.Fatal(err)
		}
		out[pid] = q
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitListeners polls listenerPIDs until ok accepts it (5 s at most).
func waitListeners(t *testing.T, tag, what string, ok func(map[int32]string) bool) map[int32]string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := listenerPIDs(t, tag)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the primary's LISTEN backends for %s are %v", what, tag, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receive reads notifications until one with payload end arrived on every channel of chans;
// it returns them as "channel:payload".
func receive(ctx context.Context, c *pgx.Conn, chans []string, end string) ([]string, error) {
	var got []string
	left := map[string]bool{}
	for _, ch := range chans {
		left[ch] = true
	}
	for len(left) > 0 {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return got, fmt.Errorf("after %v: %w", got, err)
		}
		got = append(got, n.Channel+":"+n.Payload)
		if n.Payload == end {
			delete(left, n.Channel)
		}
	}
	return got, nil
}

func TestListenFanOutManySessions(t *testing.T) {
	b, u := startFanOutBaton(t)
	ctx := ctxT(t)
	tag := uniqueName("fan")
	chA, chB := tag+"_a", tag+"_b"
	chQ := "Mixed_" + tag // LISTEN "Mixed_…": case kept
	// Session i listens on: A (i%3 != 1), B (i%3 != 0), the quoted one (i%5 == 0). Some use
	// the simple protocol, some the extended one, some spell A in upper case (folded).
	const sessions = 50
	chansOf := func(i int) []string {
		var cs []string
		if i%3 != 1 {
			cs = append(cs, chA)
		}
		if i%3 != 0 {
			cs = append(cs, chB)
		}
		if i%5 == 0 {
			cs = append(cs, chQ)
		}
		return cs
	}
	listenSQL := func(i int, ch string) string {
		switch {
		case ch == chQ:
			return `LISTEN "` + ch + `"`
		case ch == chA && i%2 == 0:
			return "LISTEN " + strings.ToUpper(ch)
		}
		return "listen " + ch
	}
	conns := make([]*pgx.Conn, sessions)
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, u)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			for _, ch := range chansOf(i) {
				if i%4 == 3 {
					// Extended protocol: Parse, Bind, Describe, Execute, Sync.
					_, err = c.PgConn().ExecParams(ctx, listenSQL(i, ch), nil, nil, nil, nil).Close()
				} else {
					_, err = c.Exec(ctx, listenSQL(i, ch))
				}
				if err != nil {
					errs <- fmt.Errorf("session %d: %s: %w", i, listenSQL(i, ch), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// One listening backend on the primary for all of them, and no session pinned.
	pids := waitListeners(t, tag, "after 50 sessions listened", func(m map[int32]string) bool { return len(m) == 1 })
	if got := b.Inst.Clusters()[0].PG.Metrics().Pinned.Snapshot()["listen"]; got != 0 {
		t.Fatalf("baton_pinned_sessions{listen} = %d; want 0 in transaction mode", got)
	}
	// Not pinned: a read may leave the primary.
	var replica bool
	for range 20 {
		if _, replica = where(t, conns[1], ctx, ""); replica {
			break
		}
	}
	if !replica {
		t.Fatal("after LISTEN, 20 reads of the session all ran on the primary: it looks pinned")
	}

	// Notifications from a session through baton (simple and extended protocol) and from a
	// direct connection to the primary, in one order.
	notifier := connectURL(t, u)
	directly := appPrimary(t)
	var sent []string
	notify := func(ch, payload string, k int) {
		t.Helper()
		var err error
		switch k % 3 {
		case 0:
			_, err = notifier.Exec(ctx, `NOTIFY "`+ch+`", '`+strings.ReplaceAll(payload, "'", "''")+`'`)
		case 1:
			_, err = notifier.Exec(ctx, "SELECT pg_notify($1, $2)", ch, payload)
		case 2:
			_, err = directly.Exec(ctx, "SELECT pg_notify($1, $2)", ch, payload)
		}
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, ch+":"+payload)
	}
	k := 0
	for r := range 4 {
		for _, ch := range []string{chA, chB, chQ} {
			notify(ch, fmt.Sprintf("r%d %s ünï'%d", r, ch[len(ch)-1:], k), k)
			k++
		}
	}
	// Not a channel anyone listens on: folded differently from chQ.
	notify(strings.ToLower(chQ), "nobody", 0)
	for _, ch := range []string{chA, chB, chQ} {
		notify(ch, "end", 0)
	}
	check := func(what string, i int, chans []string, sent []string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got, err := receive(wctx, conns[i], chans, "end")
		if err != nil {
			t.Fatalf("%s: session %d (%v): %v", what, i, chans, err)
		}
		var want []string
		for _, n := range sent {
			ch := n[:strings.IndexByte(n, ':')]
			if slices.Contains(chans, ch) {
				want = append(want, n)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: session %d (%v) received\n%q\nwant\n%q", what, i, chans, got, want)
		}
	}
	for i := range sessions {
		check("fan-out", i, chansOf(i), sent)
	}

	// A session notifying a channel it listens on gets its own notification.
	if _, err := conns[0].Exec(ctx, "NOTIFY "+chA+", 'self'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	n, err := conns[0].WaitForNotification(wctx)
	cancel()
	if err != nil || n.Channel != chA || n.Payload != "self" {
		t.Fatalf("own notification: %v, %v", n, err)
	}
	// (The other sessions of A got it too: they read it below.)
	sent = []string{chA + ":self"}

	// B's sessions leave it: half by UNLISTEN, half by disconnecting (sessions 0..9 keep
	// their A). The listener UNLISTENs B once the last one left, and keeps A and the quoted one.
	for i := range sessions {
		if !slices.Contains(chansOf(i), chB) {
			continue
		}
		if i < 10 || i%2 == 0 {
			if _, err := conns[i].Exec(ctx, "UNLISTEN "+chB); err != nil {
				t.Fatal(err)
			}
			continue
		}
		conns[i].Close(ctx)
		conns[i] = nil
	}
	after := waitListeners(t, tag, "after B's sessions left", func(m map[int32]string) bool {
		for _, q := range m {
			return len(m) == 1 && strings.HasPrefix(q, "UNLISTEN") && strings.Contains(q, chB)
		}
		return false
	})
	if !maps1Equal(pids, after) {
		t.Fatalf("the listening backend changed from %v to %v", pids, after)
	}
	for _, ch := range []string{chB, chA, chQ} {
		notify(ch, "end", 0)
	}
	for i := range sessions {
		if conns[i] == nil {
			continue
		}
		chans := slices.DeleteFunc(chansOf(i), func(c string) bool { return c == chB })
		if len(chans) == 0 {
			continue
		}
		want := sent
		if i == 0 {
			want = sent[1:] // it read its own already
		}
		check("after UNLISTEN "+chB, i, chans, want)
	}

	// Everyone leaves: UNLISTEN *, DISCARD ALL, disconnect. The listening backend goes.
	for i, c := range conns {
		if c == nil {
			continue
		}
		switch i % 3 {
		case 0:
			_, err = c.Exec(ctx, "UNLISTEN *")
		case 1:
			_, err = c.Exec(ctx, "DISCARD ALL")
		case 2:
			err = c.Close(ctx)
			conns[i] = nil
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitListeners(t, tag, "after every session left", func(m map[int32]string) bool { return len(m) == 0 })
	// … and nothing more arrives for the sessions that stayed connected.
	sent = nil
	notify(chA, "late", 0)
	notify(chQ, "late", 0)
	lateErrs := make(chan error, sessions)
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			n, err := c.WaitForNotification(wctx)
			cancel()
			if err == nil {
				lateErrs <- fmt.Errorf("session %d got %s:%s after it stopped listening", i, n.Channel, n.Payload)
				return
			}
			if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
				lateErrs <- fmt.Errorf("session %d after waiting: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(lateErrs)
	for err := range lateErrs {
		t.Error(err)
	}
}

func maps1Equal(a, b map[int32]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// A notification sent while the listening session is inside a transaction block is held
// until the block ends, then delivered before COMMIT's ReadyForQuery: the same as directly.
func TestListenFanOutHeldDuringTransaction(t *testing.T) {
	_, u := startFanOutBaton(t)
	observe := func(t *testing.T, u string) string {
		ctx := ctxT(t)
		ch := uniqueName("fan_tx")
		l := connectURL(t, u)
		n := appPrimary(t)
		if _, err := l.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
		var out []string
		tx, err := l.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Exec(ctx, "SELECT pg_notify($1, 'in-tx')", ch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // (it reached the listener by now)
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		got, err := l.WaitForNotification(wctx)
		cancel()
		if err == nil {
			out = append(out, "during the transaction: "+got.Payload)
		} else {
			out = append(out, "during the transaction: nothing")
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		got, err = l.WaitForNotification(wctx)
		cancel()
		out = append(out, fmt.Sprintf("after COMMIT: %v %v", got != nil && got.Payload == "in-tx", describeErr(err)))
		// Rolled back: the same.
		tx, err = l.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Exec(ctx, "SELECT pg_notify($1, 'in-rolled-back-tx')", ch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		got, err = l.WaitForNotification(wctx)
		cancel()
		out = append(out, fmt.Sprintf("after ROLLBACK: %v %v", got != nil && got.Payload == "in-rolled-back-tx", describeErr(err)))
		return strings.Join(out, "\n")
	}
	got := observe(t, u)
	want := observe(t, pg.Primary.AppURL())
	if got != want {
		t.Fatalf("through baton:\n%s\ndirect to the primary:\n%s", got, want)
	}
	if !strings.Contains(want, "during the transaction: nothing") {
		t.Fatalf("direct behaviour changed? %s", want)
	}
}

// The listening connection dies (pg_terminate_backend on the primary): the subscribed sessions
// end with the server's FATAL, as a direct connection holding the LISTEN would; a session that
// listens on nothing does not notice, and a new LISTEN gets a new listening connection.
func TestListenFanOutListenerKilled(t *testing.T) {
	_, u := startFanOutBaton(t)
	ctx := ctxT(t)
	tag := uniqueName("fan_kill")
	subs := []*pgx.Conn{connectURL(t, u), connectURL(t, u), connectURL(t, u)}
	for i, c := range subs {
		if _, err := c.Exec(ctx, fmt.Sprintf("LISTEN %s_%d", tag, i%2)); err != nil {
			t.Fatal(err)
		}
	}
	other := connectURL(t, u)
	if _, err := other.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	pids := waitListeners(t, tag, "after LISTEN", func(m map[int32]string) bool { return len(m) == 1 })
	admin := direct(t, pg.Primary)
	for pid := range pids {
		var ok bool
		if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
		}
	}
	for i, c := range subs {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.WaitForNotification(wctx)
		cancel()
		if got := describeErr(err); !strings.HasPrefix(got, "FATAL 57P01 ") {
			t.Fatalf("subscribed session %d: %s; want FATAL 57P01", i, got)
		}
	}
	if _, err := other.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("a session that listened on nothing: %v", err)
	}
	// A new LISTEN works, on a new listening connection.
	again := connectURL(t, u)
	if _, err := again.Exec(ctx, "LISTEN "+tag+"_0"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, "NOTIFY "+tag+"_0, 'again'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := again.WaitForNotification(wctx)
	if err != nil || n.Payload != "again" {
		t.Fatalf("after the listener died, a new LISTEN: %v, %v", n, err)
	}
	now := listenerPIDs(t, tag)
	for pid := range now {
		if _, old := pids[pid]; old {
			t.Fatalf("the dead listener %d is still listed: %v", pid, now)
		}
	}
}

// Session mode keeps the pinned LISTEN of before: the listening session stays on its backend.
func TestListenSessionModePins(t *testing.T) {
	b := batontest.StartPGBatonForTest(t, pg, func(cl *topology.Cluster) { cl.PoolMode = topology.PoolSession })
	ctx := ctxT(t)
	c := connectURL(t, b.URL(pg))
	ch := uniqueName("sess_listen")
	if _, err := c.Exec(ctx, "LISTEN "+ch); err != nil {
		t.Fatal(err)
	}
	port, rep := where(t, c, ctx, "")
	wantPrimary(t, "a read after LISTEN in session mode", port, rep)
	if got := b.Inst.Clusters()[0].PG.Metrics().Pinned.Snapshot()["listen"]; got != 1 {
		t.Fatalf("baton_pinned_sessions{listen} = %d; want 1 in session mode", got)
	}
	if _, err := appPrimary(t).Exec(ctx, "SELECT pg_notify($1, 'x')", ch); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n, err := c.WaitForNotification(wctx); err != nil || n.Payload != "x" {
		t.Fatalf("session mode: %v, %v", n, err)
	}
}

// A LISTEN prepared by name (Parse goes to a server, the Bind/Execute to the listener hub).
func TestListenFanOutPreparedStatement(t *testing.T) {
	b, u := startFanOutBaton(t)
	ctx := ctxT(t)
	ch := uniqueName("fan_prep")
	c := connectURL(t, u)
	if _, err := c.PgConn().Prepare(ctx, "lst", "LISTEN "+ch, nil); err != nil {
		t.Fatal(err)
	}
	if r := c.PgConn().ExecPrepared(ctx, "lst", nil, nil, nil).Read(); r.Err != nil || r.CommandTag.String() != "LISTEN" {
		t.Fatalf("ExecPrepared LISTEN: %q, %v", r.CommandTag.String(), r.Err)
	}
	if _, err := appPrimary(t).Exec(ctx, "SELECT pg_notify($1, 'prepared')", ch); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	n, err := c.WaitForNotification(wctx)
	cancel()
	if err != nil || n.Payload != "prepared" {
		t.Fatalf("notification: %v, %v", n, err)
	}
	if got := b.Inst.Clusters()[0].PG.Metrics().Pinned.Snapshot()["listen"]; got != 0 {
		t.Fatalf("baton_pinned_sessions{listen} = %d; want 0", got)
	}
	if r := c.PgConn().ExecParams(ctx, "UNLISTEN "+ch, nil, nil, nil, nil).Read(); r.Err != nil || r.CommandTag.String() != "UNLISTEN" {
		t.Fatalf("UNLISTEN: %q, %v", r.CommandTag.String(), r.Err)
	}
	waitListeners(t, ch, "after UNLISTEN", func(m map[int32]string) bool { return len(m) == 0 })
}

// A session that lets its notifications pile up (here: held by a long transaction) is ended
// with FATAL 53200 once they exceed the bound; another session of the same listener is
// unaffected.
func TestListenFanOutQueueBound(t *testing.T) {
	b, u := startFanOutBaton(t)
	b.Inst.Clusters()[0].PG.SetNotifyQueueLimit(4096)
	ctx := ctxT(t)
	ch := uniqueName("fan_bound")
	slow, reader := connectURL(t, u), connectURL(t, u)
	if _, err := slow.Exec(ctx, "LISTEN "+ch); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Exec(ctx, "LISTEN "+ch+"_other"); err != nil {
		t.Fatal(err)
	}
	tx, err := slow.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	notifier := appPrimary(t)
	const count = 100
	payload := strings.Repeat("x", 100)
	for i := range count {
		if _, err := notifier.Exec(ctx, "SELECT pg_notify($1, $2)", ch, fmt.Sprint(i, payload)); err != nil {
			t.Fatal(err)
		}
		if i%25 == 0 {
			if _, err := notifier.Exec(ctx, "SELECT pg_notify($1, $2)", ch+"_other", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := 0; i < count; i += 25 {
		n, err := reader.WaitForNotification(wctx)
		if err != nil || n.Payload != fmt.Sprint(i) {
			t.Fatalf("the other session, notification %d: %v, %v", i, n, err)
		}
	}
	_, err = slow.WaitForNotification(wctx)
	if got := describeErr(err); !strings.HasPrefix(got, "FATAL 53200 ") {
		t.Fatalf("the session that did not read: %s; want FATAL 53200", got)
	}
}

// A session's own notification arrives before the ReadyForQuery of the statement (or COMMIT)
// that sent it, as on a direct connection: it is there without waiting.
func TestListenFanOutOwnNotificationBeforeReady(t *testing.T) {
	_, u := startFanOutBaton(t)
	observe := func(t *testing.T, u string) string {
		ctx := ctxT(t)
		ch := uniqueName("fan_self")
		c := connectURL(t, u)
		if _, err := c.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
		var out []string
		already := func(what string) {
			done, cancel := context.WithCancel(ctx)
			cancel()
			n, err := c.WaitForNotification(done)
			if err != nil {
				out = append(out, what+": not yet")
				return
			}
			out = append(out, what+": "+n.Payload)
		}
		if _, err := c.Exec(ctx, "NOTIFY "+ch+", 'simple'"); err != nil {
			t.Fatal(err)
		}
		already("NOTIFY")
		// Extended protocol, a prepared statement (the Bind names it, not the text).
		if _, err := c.Exec(ctx, "SELECT pg_notify($1, $2)", ch, "prepared"); err != nil {
			t.Fatal(err)
		}
		already("pg_notify")
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "NOTIFY "+ch+", 'in-tx'"); err != nil {
			t.Fatal(err)
		}
		already("inside the transaction")
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		already("after COMMIT")
		return strings.Join(out, "\n")
	}
	got := observe(t, u)
	want := observe(t, pg.Primary.AppURL())
	if got != want {
		t.Fatalf("through baton:\n%s\ndirect to the primary:\n%s", got, want)
	}
}

// LISTEN inside a transaction block keeps today's behaviour (it goes to the server, takes
// effect at COMMIT, and pins the session); a channel the session also listens on through the
// listener hub is delivered once, not twice. UNLISTEN * then drops both.
func TestListenFanOutInsideTransactionPins(t *testing.T) {
	b, u := startFanOutBaton(t)
	observe := func(t *testing.T, u string) string {
		ctx := ctxT(t)
		ch := uniqueName("fan_txl")
		c := connectURL(t, u)
		n := appPrimary(t)
		var out []string
		if _, err := c.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LISTEN "+ch+"_2"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"one", "two"} {
			if _, err := n.Exec(ctx, "SELECT pg_notify($1, $2)", ch, p); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := n.Exec(ctx, "SELECT pg_notify($1, 'three')", ch+"_2"); err != nil {
			t.Fatal(err)
		}
		// The two connections' notifications may interleave differently than on one
		// connection: compare the sets, and wait a moment for a duplicate.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var got []string
		for !slices.Contains(got, ":two") || !slices.Contains(got, "_2:three") {
			nt, err := c.WaitForNotification(wctx)
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			got = append(got, strings.TrimPrefix(nt.Channel, ch)+":"+nt.Payload)
		}
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if nt, err := c.WaitForNotification(dctx); err == nil {
			got = append(got, strings.TrimPrefix(nt.Channel, ch)+":"+nt.Payload)
		}
		slices.Sort(got)
		out = append(out, got...)
		if _, err := c.Exec(ctx, "UNLISTEN *"); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Exec(ctx, "SELECT pg_notify($1, 'late')", ch); err != nil {
			t.Fatal(err)
		}
		lctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if nt, err := c.WaitForNotification(lctx); err == nil {
			out = append(out, "after UNLISTEN *: "+nt.Payload)
		}
		return strings.Join(out, "\n")
	}
	got := observe(t, u)
	want := observe(t, pg.Primary.AppURL())
	if got != want {
		t.Fatalf("through baton:\n%s\ndirect to the primary:\n%s", got, want)
	}
	if p := b.Inst.Clusters()[0].PG.Metrics().Pinned.Snapshot()["listen"]; p != 0 {
		t.Fatalf("baton_pinned_sessions{listen} = %d after UNLISTEN *; want 0", p)
	}
}
