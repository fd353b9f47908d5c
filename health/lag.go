package health

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// This file holds the engine-neutral replication rules of Build: how far behind a replica is,
// and whether it may serve reads. Everything here is pure.

// PosKind says how the positions (Observation.ReplayPos) of an engine compare.
type PosKind uint8

// Position kinds.
const (
	PosUnknown   PosKind = iota // not compared (MySQL GTID sets, or not measured)
	PosLSN                      // PostgreSQL pg_lsn text, "16/B374D848"
	PosMariaGTID                // MariaDB GTID list, "0-1-42,1-2-7"; "" is the empty list
)

// measureLag fills n.LagBytes and n.Lag for a replica observed as o. p is the primary's
// observation of this round (nil when there is no primary) and hist the primary's recent
// positions (Snapshot.PrimaryHistory).
func measureLag(n *topology.NodeState, o *Observation, p *Observation, hist []topology.PosSample, now time.Time) {
	n.LagBytes, n.Lag = -1, -1
	if o.LagKnown {
		n.Lag = max(0, o.Lag)
	}
	if p == nil || o.PosKind != p.PosKind {
		return // positions not comparable
	}
	kind := p.PosKind
	if kind == PosLSN {
		if d, ok := lsnDistance(p.ReplayPos, o.ReplayPos); ok {
			n.LagBytes = max(0, d)
		}
	}
	if c, ok := covers(kind, o.ReplayPos, p.ReplayPos); ok && c {
		n.Lag = 0 // the replica has everything the primary had when it was probed
		return
	}
	// The replica has replayed what the primary had when an earlier probe read its position:
	// nothing it lacks is older than that probe.
	for i := len(hist) - 1; i >= 0; i-- {
		if c, ok := covers(kind, o.ReplayPos, hist[i].Pos); ok && c {
			if b := max(0, now.Sub(hist[i].At)); n.Lag < 0 || b < n.Lag {
				n.Lag = b
			}
			return
		}
	}
}

// Bounds of Snapshot.PrimaryHistory.
const (
	historyMin = 10 * time.Second // kept at least this long, whatever max_lag is
	historyCap = 1024             // samples at most
)

// primaryHistory returns prev's history of the primary named name, trimmed to what can still
// bound a lag within cl.MaxLag, with this round's position p appended. The result is a new slice:
// published snapshots are never modified.
func primaryHistory(cl *topology.Cluster, prev *topology.Snapshot, name string, p *Observation, now time.Time) []topology.PosSample {
	var old []topology.PosSample
	if pp := prev.PrimaryNode(); pp != nil && pp.Name == name {
		old = prev.PrimaryHistory
	}
	horizon := max(cl.MaxLag.D(), historyMin) + 2*cl.ProbeInterval.D()
	first := 0
	for first < len(old) && (now.Sub(old[first].At) > horizon || len(old)-first >= historyCap) {
		first++
	}
	h := make([]topology.PosSample, 0, len(old)-first+1)
	h = append(h, old[first:]...)
	if !p.At.IsZero() {
		h = append(h, topology.PosSample{Pos: p.ReplayPos, At: p.At})
	}
	return h
}

// unreadable returns why replica n may not serve reads, or "" when it may. src is the node it
// must replicate from (nil when no primary is known).
func unreadable(cl *topology.Cluster, n *topology.NodeState, src *topology.NodeState) string {
	switch {
	case n.Drain:
		return "drained"
	case n.Weight <= 0:
		return "read weight 0"
	case !n.Streaming:
		return "not streaming"
	}
	if n.Following != "" {
		if src == nil {
			return fmt.Sprintf("streams from %s; no primary known", n.Following)
		}
		if !sameEndpoint(n.Following, src.Address) {
			return fmt.Sprintf("streams from %s, not from the primary %s (%s)", n.Following, src.Name, src.Address)
		}
	}
	if b := int64(cl.MaxLagBytes); b > 0 && cl.Engine != topology.EngineMySQL {
		if n.LagBytes < 0 {
			return "lag in bytes unknown"
		}
		if n.LagBytes > b {
			return fmt.Sprintf("lag %d bytes > max_lag_bytes %d", n.LagBytes, b)
		}
	}
	if m := cl.MaxLag.D(); m > 0 {
		if n.Lag < 0 {
			return "lag unknown"
		}
		if n.Lag > m {
			return fmt.Sprintf("lag %v > max_lag %v", n.Lag.Round(time.Millisecond), m)
		}
	}
	return ""
}

// covers reports whether replica position have includes primary position want, both of kind k.
// ok is false when they cannot be compared.
func covers(k PosKind, have, want string) (covered, ok bool) {
	switch k {
	case PosLSN:
		h, err1 := parseLSN(have)
		w, err2 := parseLSN(want)
		if err1 != nil || err2 != nil {
			return false, false
		}
		return h >= w, true
	case PosMariaGTID:
	default:
		return false, false
	}
	h, err1 := ParseMariaPos(have)
	w, err2 := ParseMariaPos(want)
	if err1 != nil || err2 != nil {
		return false, false
	}
	return h.Covers(w), true
}

// lsnDistance returns primary − replica in bytes when both are pg_lsn text.
func lsnDistance(primary, replica string) (int64, bool) {
	p, err1 := parseLSN(primary)
	r, err2 := parseLSN(replica)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return p - r, true
}

// parseLSN parses PostgreSQL pg_lsn text "X/Y" (two hexadecimal 32-bit halves).
func parseLSN(s string) (int64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" {
		return 0, fmt.Errorf("health: bad LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("health: bad LSN %q", s)
	}
	return int64(h<<32 | l), nil
}

// sameEndpoint reports whether two host:port strings name the same server: equal ports and
// equal hosts (ignoring case), or both hosts loopback. No name is resolved.
func sameEndpoint(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(a, b)
	}
	an, err1 := strconv.Atoi(ap)
	bn, err2 := strconv.Atoi(bp)
	if err1 != nil || err2 != nil || an != bn {
		return false
	}
	return strings.EqualFold(ah, bh) || (isLoopback(ah) && isLoopback(bh))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
