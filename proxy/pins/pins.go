package pins

import (
	"math/bits"
	"sync/atomic"

	"github.com/baton-proxy/baton/router"
)

// Reasons are the metric label values, in bit order of router.Pin.
var Reasons = []string{"temp_table", "listen", "advisory_lock", "sql_prepare", "hold_cursor", "lock_tables", "user_variable", "other"}

// Counts holds how many sessions hold each pin now. The zero value is ready; safe for
// concurrent use.
type Counts struct {
	n [16]atomic.Int64
}

// Session is one session's published pins. Not safe for concurrent use: the session's own
// goroutines call it in turn.
type Session struct {
	published router.Pin
	logged    router.Pin
}

// Publish records that the session now holds pins p. It returns the pins that appear for the
// first time in this session, to log once.
func (c *Counts) Publish(s *Session, p router.Pin) (first router.Pin) {
	if p == s.published {
		return 0
	}
	for d := p ^ s.published; d != 0; d &= d - 1 {
		i := bits.TrailingZeros16(uint16(d))
		if p&(1<<i) != 0 {
			c.n[i].Add(1)
		} else {
			c.n[i].Add(-1)
		}
	}
	s.published = p
	first = p &^ s.logged
	s.logged |= p
	return first
}

// Snapshot returns the number of pinned sessions by reason (every reason, zeros included).
func (c *Counts) Snapshot() map[string]int64 {
	out := make(map[string]int64, len(Reasons))
	for i, r := range Reasons {
		out[r] = c.n[i].Load()
	}
	return out
}

// Names returns the reasons of the bits in p.
func Names(p router.Pin) []string {
	var out []string
	for d := p; d != 0; d &= d - 1 {
		if i := bits.TrailingZeros16(uint16(d)); i < len(Reasons) {
			out = append(out, Reasons[i])
		}
	}
	return out
}
