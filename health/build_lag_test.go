package health

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-proxy/baton/topology"
)

func lagCluster(engine topology.Engine, maxLag time.Duration, maxBytes topology.ByteSize) *topology.Cluster {
	return &topology.Cluster{Name: "c", Engine: engine, MaxLag: topology.Duration(maxLag), MaxLagBytes: maxBytes,
		Nodes: []*topology.Node{
			{Name: "a", Address: "127.0.0.1:1"},
			{Name: "b", Address: "127.0.0.1:2"},
			{Name: "c", Address: "127.0.0.1:3"},
		}}
}

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func pgPrimary(lsn string) Observation {
	return Observation{Up: true, ReplayPos: lsn, PosKind: PosLSN, At: t0.Add(-10 * time.Millisecond)}
}

// pgReplica is a streaming replica of a at replay LSN lsn; lag < 0 means no replay timestamp.
func pgReplica(lsn string, lag time.Duration) Observation {
	o := Observation{Up: true, InRecover: true, Streaming: true, Following: "127.0.0.1:1", ReplayPos: lsn, PosKind: PosLSN}
	if lag >= 0 {
		o.Lag, o.LagKnown = lag, true
	}
	return o
}

func with(o Observation, f func(*Observation)) Observation { f(&o); return o }

func TestBuildReplicationRules(t *testing.T) {
	pg := lagCluster(topology.EnginePostgres, 10*time.Second, 16<<20)
	// prevA: earlier rounds saw primary a at 0/800 three seconds and at 0/1000 one second before t0.
	hist := []topology.PosSample{{Pos: "0/800", At: t0.Add(-3 * time.Second)}, {Pos: "0/1000", At: t0.Add(-time.Second)}}
	prevA := &topology.Snapshot{Primary: 0, Nodes: []topology.NodeState{{Name: "a", Address: "127.0.0.1:1", Role: topology.RolePrimary}}, PrimaryHistory: hist}
	prevC := &topology.Snapshot{Primary: 0, Nodes: []topology.NodeState{{Name: "c", Address: "127.0.0.1:3", Role: topology.RolePrimary}}, PrimaryHistory: hist}
	down := Observation{}
	tests := []struct {
		name     string
		cl       *topology.Cluster
		prev     *topology.Snapshot
		b        Observation // node b; a is the primary at 0/2000 unless primary is set
		primary  *Observation
		readable bool
		why      string // substring of Unreadable
		lag      time.Duration
		lagBytes int64
	}{
		{name: "caught up, no replay timestamp yet", cl: pg, b: pgReplica("0/2000", -1), readable: true, lag: 0, lagBytes: 0},
		{name: "ahead of the primary's probe", cl: pg, b: pgReplica("0/2100", time.Hour), readable: true, lag: 0, lagBytes: 0},
		{name: "behind, recent commit", cl: pg, b: pgReplica("0/1F00", 5*time.Second), readable: true, lag: 5 * time.Second, lagBytes: 0x100},
		{name: "behind, exactly max_lag", cl: pg, b: pgReplica("0/1F00", 10*time.Second), readable: true, lag: 10 * time.Second, lagBytes: 0x100},
		{name: "behind, over max_lag", cl: pg, b: pgReplica("0/1F00", 31*time.Second), why: "lag 31s > max_lag 10s", lag: 31 * time.Second, lagBytes: 0x100},
		{name: "behind, lag unknown", cl: pg, b: pgReplica("0/1F00", -1), why: "lag unknown", lag: -1, lagBytes: 0x100},
		{name: "behind, unknown lag, no bound", cl: lagCluster(topology.EnginePostgres, 0, 16<<20), b: pgReplica("0/1F00", -1), readable: true, lag: -1, lagBytes: 0x100},
		{name: "over max_lag_bytes", cl: pg, primary: ptr(pgPrimary("1/2000")), b: pgReplica("0/1000", time.Second), why: "max_lag_bytes", lag: time.Second, lagBytes: 1<<32 + 0x1000},
		{name: "bytes unbounded", cl: lagCluster(topology.EnginePostgres, 10*time.Second, 0), primary: ptr(pgPrimary("1/2000")), b: pgReplica("0/1000", time.Second), readable: true, lag: time.Second, lagBytes: 1<<32 + 0x1000},
		{name: "not streaming", cl: pg, b: with(pgReplica("0/2000", 0), func(o *Observation) { o.Streaming = false }), why: "not streaming", lag: 0, lagBytes: 0},
		{name: "streams from another node", cl: pg, b: with(pgReplica("0/2000", 0), func(o *Observation) { o.Following = "127.0.0.1:3" }), why: "not from the primary a", lag: 0, lagBytes: 0},
		{name: "source as localhost", cl: pg, b: with(pgReplica("0/2000", 0), func(o *Observation) { o.Following = "localhost:1" }), readable: true, lag: 0, lagBytes: 0},
		{name: "source unknown", cl: pg, b: with(pgReplica("0/2000", 0), func(o *Observation) { o.Following = "" }), readable: true, lag: 0, lagBytes: 0},
		{name: "drained", cl: drained(pg), b: pgReplica("0/2000", 0), why: "drained", lag: 0, lagBytes: 0},
		// Earlier rounds' primary positions bound the lag of a replica that reached one.
		{name: "reached last round's position", cl: pg, prev: prevA, b: pgReplica("0/1000", time.Hour), readable: true, lag: time.Second, lagBytes: 0x1000},
		{name: "reached last round's position, no timestamp", cl: pg, prev: prevA, b: pgReplica("0/1800", -1), readable: true, lag: time.Second, lagBytes: 0x800},
		{name: "reached an older position", cl: pg, prev: prevA, b: pgReplica("0/0F00", time.Hour), readable: true, lag: 3 * time.Second, lagBytes: 0x1100},
		{name: "reached an older position, over max_lag", cl: lagCluster(topology.EnginePostgres, 2*time.Second, 0), prev: prevA, b: pgReplica("0/0F00", -1), why: "lag 3s > max_lag 2s", lag: 3 * time.Second, lagBytes: 0x1100},
		{name: "short of every known position", cl: pg, prev: prevA, b: pgReplica("0/700", time.Hour), why: "lag 1h0m0s > max_lag", lag: time.Hour, lagBytes: 0x1900},
		{name: "the history was another primary's", cl: pg, prev: prevC, b: pgReplica("0/1000", time.Hour), why: "> max_lag", lag: time.Hour, lagBytes: 0x1000},
		// Without a primary this round, the source is checked against the previous primary and
		// the byte lag is unknown.
		{name: "no primary, bytes bound", cl: pg, prev: prevA, primary: &down, b: pgReplica("0/2000", 0), why: "lag in bytes unknown", lag: 0, lagBytes: -1},
		{name: "no primary, time bound only", cl: lagCluster(topology.EnginePostgres, 10*time.Second, 0), prev: prevA, primary: &down, b: pgReplica("0/2000", 0), readable: true, lag: 0, lagBytes: -1},
		{name: "no primary ever, known source", cl: lagCluster(topology.EnginePostgres, 0, 0), primary: &down, b: pgReplica("0/2000", 0), why: "no primary known", lag: 0, lagBytes: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pgPrimary("0/2000")
			if tt.primary != nil {
				p = *tt.primary
			}
			s := Build(tt.cl, tt.prev, []Observation{p, tt.b, down}, t0)
			b := s.Nodes[1]
			if got := slices.Contains(s.Readable, 1); got != tt.readable {
				t.Fatalf("readable %v, want %v (reason %q)", got, tt.readable, b.Unreadable)
			}
			if tt.readable != (b.Unreadable == "") || !strings.Contains(b.Unreadable, tt.why) {
				t.Fatalf("reason %q, want %q", b.Unreadable, tt.why)
			}
			if b.Lag != tt.lag || b.LagBytes != tt.lagBytes {
				t.Fatalf("lag %v / %d bytes, want %v / %d", b.Lag, b.LagBytes, tt.lag, tt.lagBytes)
			}
			if s.Nodes[2].Up || s.Nodes[2].Lag != -1 || s.Nodes[2].LagBytes != -1 || s.Nodes[2].Unreadable != "" {
				t.Fatalf("down node: %+v", s.Nodes[2])
			}
		})
	}
}

func TestBuildMySQLReplicationRules(t *testing.T) {
	my := lagCluster(topology.EngineMySQL, 2*time.Second, 0)
	maria := func(pos string, sbm time.Duration) Observation {
		o := Observation{Up: true, InRecover: true, Streaming: true, Following: "127.0.0.1:1", ReplayPos: pos, PosKind: PosMariaGTID}
		if sbm >= 0 {
			o.Lag, o.LagKnown = sbm, true
		}
		return o
	}
	primary := Observation{Up: true, ReplayPos: "0-1-50,1-1-7", PosKind: PosMariaGTID, At: t0}
	tests := []struct {
		name     string
		primary  Observation
		b        Observation
		readable bool
		lag      time.Duration
	}{
		{"caught up, no Seconds_Behind_Master (no privilege)", primary, maria("1-1-7,0-1-50", -1), true, 0},
		{"caught up, stale Seconds_Behind_Master", primary, maria("0-1-50,1-1-7", 3*time.Second), true, 0},
		{"empty positions", Observation{Up: true, PosKind: PosMariaGTID}, maria("", -1), true, 0},
		{"behind in one domain", primary, maria("0-1-50,1-1-6", 30*time.Second), false, 30 * time.Second},
		{"behind, lag unknown", primary, maria("0-1-49,1-1-7", -1), false, -1},
		{"behind within max_lag", primary, maria("0-1-49,1-1-7", 2*time.Second), true, 2 * time.Second},
		{"MySQL GTID sets are not compared", Observation{Up: true, ReplayPos: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
			Observation{Up: true, InRecover: true, Streaming: true, ReplayPos: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}, false, -1},
		{"MySQL Seconds_Behind_Master 0", Observation{Up: true},
			Observation{Up: true, InRecover: true, Streaming: true, LagKnown: true}, true, 0},
		{"stopped replica", primary, with(maria("0-1-50,1-1-7", -1), func(o *Observation) { o.Streaming = false }), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Build(my, nil, []Observation{tt.primary, tt.b, {}}, t0)
			b := s.Nodes[1]
			if got := slices.Contains(s.Readable, 1); got != tt.readable {
				t.Fatalf("readable %v, want %v (reason %q)", got, tt.readable, b.Unreadable)
			}
			if b.Lag != tt.lag || b.LagBytes != -1 {
				t.Fatalf("lag %v / %d bytes, want %v / -1", b.Lag, b.LagBytes, tt.lag)
			}
		})
	}
}

// TestBuildLeavesAndRejoins runs rounds through Build as the checker does: a replica leaves the
// read set at the first round over max_lag and rejoins at the first round within it.
func TestBuildLeavesAndRejoins(t *testing.T) {
	cl := lagCluster(topology.EnginePostgres, 2*time.Second, 16<<20)
	lags := []time.Duration{0, time.Second, 3 * time.Second, 30 * time.Second, 2 * time.Second, 0}
	want := []bool{true, true, false, false, true, true}
	var prev *topology.Snapshot
	now := t0
	for i, lag := range lags {
		now = now.Add(200 * time.Millisecond)
		p := Observation{Up: true, ReplayPos: "0/" + strings.Repeat("F", i+1), PosKind: PosLSN, At: now}
		b := pgReplica("0/1", lag) // always behind: only the replay timestamp decides
		s := Build(cl, prev, []Observation{p, b, pgReplica("0/1", 0)}, now)
		if got := slices.Contains(s.Readable, 1); got != want[i] {
			t.Fatalf("round %d (lag %v): readable %v, want %v (%q)", i, lag, got, want[i], s.Nodes[1].Unreadable)
		}
		prev = s
	}
}

func TestPrimaryHistory(t *testing.T) {
	cl := lagCluster(topology.EnginePostgres, 2*time.Second, 0)
	cl.ProbeInterval = topology.Duration(time.Second)
	var prev *topology.Snapshot
	now := t0
	for i := range 30 {
		now = now.Add(time.Second)
		p := Observation{Up: true, ReplayPos: fmt.Sprintf("0/%X", 0x100*(i+1)), PosKind: PosLSN, At: now.Add(-time.Millisecond)}
		s := Build(cl, prev, []Observation{p, pgReplica("0/100", -1), {}}, now)
		if prev != nil && len(prev.PrimaryHistory) > 0 && len(s.PrimaryHistory) > 0 && &prev.PrimaryHistory[0] == &s.PrimaryHistory[0] {
			t.Fatal("the new history shares the published one's array")
		}
		prev = s
	}
	// The horizon is max(max_lag, 10s) + 2 probe intervals = 12s: 12 samples of one per second.
	h := prev.PrimaryHistory
	if len(h) != 12 || h[len(h)-1].Pos != "0/1E00" || now.Sub(h[0].At) > 12*time.Second {
		t.Fatalf("history: %d samples, newest %q, oldest %v old", len(h), h[len(h)-1].Pos, now.Sub(h[0].At))
	}
	// A new primary starts a new history.
	p := Observation{Up: true, ReplayPos: "0/5000", PosKind: PosLSN, At: now}
	s := Build(cl, prev, []Observation{{}, p, {}}, now.Add(time.Second))
	if len(s.PrimaryHistory) != 1 || s.PrimaryHistory[0].Pos != "0/5000" {
		t.Fatalf("history after a primary change: %v", s.PrimaryHistory)
	}
}

func TestBuildSyncStandby(t *testing.T) {
	cl := lagCluster(topology.EnginePostgres, 0, 0)
	p := pgPrimary("0/10")
	p.SyncNames = []string{"b"}
	b, c := pgReplica("0/10", 0), pgReplica("0/10", 0)
	b.AppName, c.AppName = "b", "c"
	s := Build(cl, nil, []Observation{p, b, c}, t0)
	if !s.Nodes[1].Sync || s.Nodes[2].Sync || s.Nodes[0].Sync {
		t.Fatalf("sync flags: %v %v %v", s.Nodes[0].Sync, s.Nodes[1].Sync, s.Nodes[2].Sync)
	}
	if s.Nodes[0].Lag != 0 || s.Nodes[0].LagBytes != 0 || s.Nodes[0].ReplayPos != "0/10" {
		t.Fatalf("primary state: %+v", s.Nodes[0])
	}
	// The primary dies: the failover that follows chooses among the standbys it last waited
	// for first, so the flags outlive it.
	s = Build(cl, s, []Observation{{}, b, c}, t0.Add(time.Second))
	if !s.Nodes[1].Sync || s.Nodes[2].Sync {
		t.Fatalf("sync flags with the primary down: %v %v", s.Nodes[1].Sync, s.Nodes[2].Sync)
	}
	// A new primary's own list replaces them.
	s = Build(cl, s, []Observation{{}, b, pgPrimary("0/20")}, t0.Add(2*time.Second))
	if s.Nodes[1].Sync {
		t.Fatalf("sync flag after a new primary without standbys: %v", s.Nodes[1].Sync)
	}
}

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]int64{"0/0": 0, "0/3000060": 0x3000060, "16/B374D848": 0x16B374D848, "7FFFFFFF/FFFFFFFF": 1<<63 - 1} {
		got, err := parseLSN(in)
		if err != nil || got != want {
			t.Errorf("parseLSN(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "/1", "1/", "G/1", "1/100000000", "0/1/2"} {
		if _, err := parseLSN(bad); err == nil {
			t.Errorf("parseLSN(%q): no error", bad)
		}
	}
}

func TestSameEndpoint(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:5432", "127.0.0.1:5432", true},
		{"localhost:5432", "127.0.0.1:5432", true},
		{"[::1]:5432", "127.0.0.1:5432", true},
		{"DB1.example:5432", "db1.example:5432", true},
		{"127.0.0.1:5432", "127.0.0.1:5433", false},
		{"10.0.0.1:5432", "db1.example:5432", false}, // no name resolution
		{"127.0.0.1:05432", "127.0.0.1:5432", true},
	}
	for _, tt := range tests {
		if got := sameEndpoint(tt.a, tt.b); got != tt.want {
			t.Errorf("sameEndpoint(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

func TestPGObservation(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	conninfo := "user=postgres password=******** dbname=replication host=127.0.0.1 port=5432 fallback_application_name=replica1 sslmode=prefer"
	tests := []struct {
		name string
		row  [][]byte
		want Observation
	}{
		{"primary", [][]byte{b("f"), b("0/3000060"), nil, nil, nil, nil, nil, nil, nil, b("primary"), b(`["r1", "r 2"]`)},
			Observation{Up: true, ReplayPos: "0/3000060", PosKind: PosLSN, SyncNames: []string{"r1", "r 2"}}},
		{"replica", [][]byte{b("t"), b("0/3000060"), b("0/3000100"), b("1.5"), b("42"), b("streaming"), b("127.0.0.1"), b("5432"), b(conninfo), b("replica1"), nil},
			Observation{Up: true, InRecover: true, ReplayPos: "0/3000060", ReceivePos: "0/3000100", PosKind: PosLSN, Lag: 1500 * time.Millisecond, LagKnown: true,
				Streaming: true, Following: "127.0.0.1:5432", AppName: "replica1"}},
		{"replica, receiver waiting, IPv6 source", [][]byte{b("t"), b("0/1"), b("0/1"), nil, b("42"), b("waiting"), b("::1"), b("5432"), b("application_name='my app' host=::1"), b(""), nil},
			Observation{Up: true, InRecover: true, ReplayPos: "0/1", ReceivePos: "0/1", PosKind: PosLSN, Following: "[::1]:5432", AppName: "my app"}},
		{"replica, details hidden", [][]byte{b("t"), b("0/1"), b("0/1"), b("-0.2"), b("42"), nil, nil, nil, nil, b(""), nil},
			Observation{Up: true, InRecover: true, ReplayPos: "0/1", ReceivePos: "0/1", PosKind: PosLSN, LagKnown: true, Streaming: true, AppName: "walreceiver", Limited: pgLimited}},
		{"replica, no receiver", [][]byte{b("t"), b("0/1"), b("0/1"), nil, nil, nil, nil, nil, nil, b("r"), nil},
			Observation{Up: true, InRecover: true, ReplayPos: "0/1", ReceivePos: "0/1", PosKind: PosLSN, AppName: "r"}},
		{"replica, socket source", [][]byte{b("t"), b("0/1"), b("0/1"), nil, b("42"), b("streaming"), b("/var/run/postgresql"), b("5432"), nil, b(""), nil},
			Observation{Up: true, InRecover: true, ReplayPos: "0/1", ReceivePos: "0/1", PosKind: PosLSN, Streaming: true, AppName: "walreceiver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pgObservation(tt.row)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.SyncNames, tt.want.SyncNames) {
				t.Fatalf("sync names %q, want %q", got.SyncNames, tt.want.SyncNames)
			}
			got.SyncNames, tt.want.SyncNames = nil, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseConninfo(t *testing.T) {
	got := parseConninfo(`host=h  port=1 application_name='a \'quoted\' name' empty='' x=y`)
	want := map[string]string{"host": "h", "port": "1", "application_name": "a 'quoted' name", "empty": "", "x": "y"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q (all: %q)", k, got[k], v, got)
		}
	}
	if kv := parseConninfo(`a='unterminated`); len(kv) != 0 {
		t.Fatalf("unterminated quote: %q", kv)
	}
}

func TestLagConfig(t *testing.T) {
	const base = "clusters:\n  - name: c\n    engine: %s\n    listen: 127.0.0.1:1\n%s    nodes: [{name: a, address: '127.0.0.1:2'}]\n    users: [{name: u, password: p, auth: %s}]\n"
	parse := func(engine, extra string) (*topology.Cluster, error) {
		auth := "md5"
		if engine == "mysql" {
			auth = "mysql_native_password"
		}
		cfg, err := topology.Parse("t.yaml", fmt.Appendf(nil, base, engine, extra, auth))
		if err != nil {
			return nil, err
		}
		return cfg.Clusters[0], nil
	}
	tests := []struct {
		name, engine, extra string
		lag                 time.Duration
		bytes               topology.ByteSize
		err                 string
	}{
		{"defaults", "postgres", "", 10 * time.Second, 16 << 20, ""},
		{"set", "postgres", "    max_lag: 2s\n    max_lag_bytes: 1MiB\n", 2 * time.Second, 1 << 20, ""},
		{"explicit zero is no bound", "postgres", "    max_lag: 0s\n    max_lag_bytes: 0\n", 0, 0, ""},
		{"mysql has no byte bound", "mysql", "", 10 * time.Second, 0, ""},
		{"mysql with byte bound", "mysql", "    max_lag_bytes: 1MiB\n", 0, 0, "clusters[0].max_lag_bytes"},
		{"negative", "postgres", "    max_lag: -1s\n", 0, 0, "negative duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := parse(tt.engine, tt.extra)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cl.MaxLag.D() != tt.lag || cl.MaxLagBytes != tt.bytes {
				t.Fatalf("max_lag %v, max_lag_bytes %d; want %v, %d", cl.MaxLag.D(), cl.MaxLagBytes, tt.lag, tt.bytes)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func drained(cl *topology.Cluster) *topology.Cluster {
	c := *cl
	c.Nodes = slices.Clone(cl.Nodes)
	n := *c.Nodes[1]
	n.Drain = true
	c.Nodes[1] = &n
	return &c
}
