package clients

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// target is one side of a comparison: baton, or the primary directly. Both use the same user,
// password and database.
type target struct {
	name     string // "baton", "baton-session" or "direct"
	host     string
	port     int
	user     string
	password string
	db       string
}

func (tg target) addr() string { return tg.host + ":" + strconv.Itoa(tg.port) }

// pgURL is a libpq-style URL for the target.
func (tg target) pgURL() string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", tg.user, tg.password, tg.addr(), tg.db)
}

// myDSN is a go-sql-driver DSN for the target; params are appended.
func (tg target) myDSN(params string) string {
	d := fmt.Sprintf("%s:%s@tcp(%s)/%s", tg.user, tg.password, tg.addr(), tg.db)
	if params != "" {
		d += "?" + params
	}
	return d
}

// scenario is one thing a client does, run once per target.
type scenario struct {
	name string
	// setup is SQL run on the primary as the app user before each run, with {T} replaced by the
	// scenario's table name (t_<client>_<scenario>); then both replicas are awaited.
	setup string
	// want are substrings the direct run's output must contain: they prove the client did what
	// the scenario is about, so that two equally empty or equally failed runs cannot pass.
	want []string
	// broken names the issue-9 item of a known difference. A broken scenario still runs, and the
	// test asserts that the outputs still differ.
	broken string
	// txDiffers names a documented difference of transaction pooling only (README, pool
	// modes): the scenario must match directly through the session-mode baton, and still
	// differ through the transaction-mode one.
	txDiffers string
	// timeout bounds one run; default 60 s.
	timeout time.Duration
}

// client is one real client program; run executes one scenario against one target and returns
// its canonical output (whatever it printed, including its errors and exit status).
type client struct {
	name  string
	pg    bool // a PostgreSQL client (else MySQL/MariaDB)
	need  func() error
	run   func(ctx context.Context, tg target, sc scenario, table string) string
	scens []scenario
}

func pgTargets() []target {
	o := pg.Opts
	return []target{
		{name: "baton", host: "127.0.0.1", port: addrPort(pgBaton.Inst.Clusters()[0].Addr().String()), user: o.AppUser, password: o.AppPassword, db: o.AppDB},
		{name: "baton-session", host: "127.0.0.1", port: addrPort(pgBatonSession.Inst.Clusters()[0].Addr().String()), user: o.AppUser, password: o.AppPassword, db: o.AppDB},
		{name: "direct", host: "127.0.0.1", port: pg.Primary.Port, user: o.AppUser, password: o.AppPassword, db: o.AppDB},
	}
}

func myTargets() []target {
	o := my.Opts
	return []target{
		{name: "baton", host: "127.0.0.1", port: addrPort(myBaton.Inst.Clusters()[0].Addr().String()), user: o.AppUser, password: o.AppPassword, db: o.AppDB},
		{name: "baton-session", host: "127.0.0.1", port: addrPort(myBatonSession.Inst.Clusters()[0].Addr().String()), user: o.AppUser, password: o.AppPassword, db: o.AppDB},
		{name: "direct", host: "127.0.0.1", port: my.Primary.Port, user: o.AppUser, password: o.AppPassword, db: o.AppDB},
	}
}

func addrPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		panic("BUG: listen address without a port: " + addr)
	}
	return p
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// tableName is the scenario's own table: scenarios never share data.
func tableName(c *client, sc scenario) string {
	return "t_" + strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(c.name+"_"+sc.name), "_"), "_")
}

// runClient runs every scenario of c through baton and directly, and compares.
func runClient(t *testing.T, c *client) {
	if err := c.need(); err != nil {
		t.Fatalf("client %s cannot run: %v", c.name, err)
	}
	targets := myTargets()
	if c.pg {
		targets = pgTargets()
	}
	for _, sc := range c.scens {
		t.Run(sc.name, func(t *testing.T) { compare(t, c, sc, targets) })
	}
}

// compare runs sc against every target — per engine baton in transaction mode (the default)
// and in session mode, then the primary directly: the batons first, so that nothing the direct
// run leaves behind can help them — and compares each baton's output with the direct one.
func compare(t *testing.T, c *client, sc scenario, targets []target) {
	table := tableName(c, sc)
	outs := make([]string, len(targets))
	for i, tg := range targets {
		if sc.setup != "" {
			setup(t, c.pg, strings.ReplaceAll(sc.setup, "{T}", table))
		}
		d := sc.timeout
		if d == 0 {
			d = 60 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		began := time.Now()
		raw := c.run(ctx, tg, sc, table)
		cancel()
		outs[i] = normalize(raw, tg)
		t.Logf("%s run: %v, %d lines", tg.name, time.Since(began).Round(time.Millisecond), strings.Count(outs[i], "\n"))
	}
	direct := outs[len(outs)-1]
	if os.Getenv("BATON_CLIENTS_SHOW") != "" {
		t.Logf("direct output:\n%s", direct)
	}
	if strings.TrimSpace(direct) == "" {
		t.Fatalf("the direct run printed nothing: the client program does not do scenario %q", sc.name)
	}
	for _, w := range sc.want {
		if !strings.Contains(direct, w) {
			t.Errorf("the direct run's output lacks %q (the scenario does not test what it says):\n%s", w, direct)
		}
	}
	for i, tg := range targets[:len(targets)-1] {
		known := sc.broken
		if known == "" && tg.name == "baton" {
			known = sc.txDiffers
		}
		viaBaton := outs[i]
		if viaBaton == direct {
			if known != "" {
				t.Errorf("%s now passes: remove the mark %q from %s/%s", tg.name, known, c.name, sc.name)
			}
			continue
		}
		d := diff(direct, viaBaton)
		if known != "" {
			t.Logf("%s still differs as expected (%s); - direct, + baton:\n%s", tg.name, known, d)
			continue
		}
		t.Errorf("%s %s: %s differs from a direct connection to the primary (- direct, + baton):\n%s", c.name, sc.name, tg.name, d)
	}
}

// normalize removes what legitimately differs between the two targets:
//   - the target's own port (messages naming the server address, such as libpq's
//     `connection to server at "127.0.0.1", port N failed`): baton listens on another port
//     than the primary by nature;
//   - MariaDB Connector/J's "(conn=N)" prefix of every error message: N is the connection's
//     thread id, which the server (or baton) allocates anew for every connection, so two direct
//     runs differ as well. Whether baton's ids behave like the server's (CONNECTION_ID() equal to
//     the handshake's id, KILL of it) is what the kill_query and cancel scenarios check.
//
// Nothing else is normalized: the client programs print no pids, thread ids or clock values
// themselves (they print comparisons of them instead), so any other difference is real.
func normalize(out string, tg target) string {
	// Only where the number stands as a port ("port 5432", "port=5432", "host:5432"): the same
	// digits elsewhere (a count, a sum) are data.
	re := regexp.MustCompile(`((?i:port)[ =]*|:)` + strconv.Itoa(tg.port) + `\b`)
	out = re.ReplaceAllString(out, "${1}<port>")
	return connID.ReplaceAllString(out, "(conn=<id>)")
}

var connID = regexp.MustCompile(`\(conn=\d+\)`)

// diff is a line diff (longest common subsequence) of a and b: "- " lines only in a, "+ " only
// in b, "  " common. Outputs are small.
func diff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	n, m := len(x), len(y)
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			sb.WriteString("  " + x[i] + "\n")
			i++
			j++
		case j < m && (i == n || l[i][j+1] >= l[i+1][j]):
			sb.WriteString("+ " + y[j] + "\n")
			j++
		default:
			sb.WriteString("- " + x[i] + "\n")
			i++
		}
	}
	return sb.String()
}
