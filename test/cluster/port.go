package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// The port is taken from below the kernel's ephemeral range (Linux:
// net.ipv4.ip_local_port_range, elsewhere the IANA 49152–65535), never from
// it: a server that a test stops and starts again on the same port (a killed
// primary, an etcd member, a baton instance, a test's TCP relay) would
// otherwise find it taken: by the local end of some unrelated outgoing
// connection, which the kernel may give any free ephemeral port, or by a
// client that keeps dialling the stopped server, since a dial on loopback to
// a free ephemeral port can connect to itself (TCP simultaneous open, local
// port = remote port). Both happened under `make test`. Ports below the range
// are only ever taken by explicit binds.
//
// A port handed out is not handed out again by this process for a minute,
// so two calls in a row never return the same port even before the first
// caller has bound it. Other processes choose at random from more than ten
// thousand ports; the window in which two of them could pick the same one is
// the moment between this check and the caller's bind, and the harnesses
// start again on new ports when a bind fails.
func FreePort() (int, error) {
	lo, hi := portRange()
	if hi-lo < 1000 { // no room below the ephemeral range: let the kernel choose
		return kernelPort()
	}
	for range 200 {
		p := lo + rand.IntN(hi-lo+1)
		if !recent.claim(p) {
			continue
		}
		if portFree(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("cluster: no free port found in %d-%d", lo, hi)
}

// kernelPort asks the kernel for a free port (from the ephemeral range).
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cluster: find a free port: %w", err)
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	recent.claim(p)
	return p, nil
}

// Ports below minPort are left alone: many well-known services live there.
const minPort = 10000

// portRange returns the ports FreePort chooses from: minPort up to just
// below the ephemeral range, or just above it when that leaves more room.
func portRange() (lo, hi int) { return rangeOutside(ephemeralRange()) }

// rangeOutside returns the ports from minPort to 65535 that lie outside the ephemeral range
// [elo, ehi], on whichever side has more of them.
func rangeOutside(elo, ehi int) (lo, hi int) {
	below := elo - 1 - minPort
	above := 65535 - (ehi + 1)
	if above > below {
		return ehi + 1, 65535
	}
	return minPort, elo - 1
}

// ephemeralRange reads the kernel's range of ports for outgoing connections.
func ephemeralRange() (lo, hi int) {
	lo, hi = 49152, 65535
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return lo, hi
	}
	return l, h
}

// recent remembers the ports this process handed out in the last minute.
var recent = &portSet{at: map[int]time.Time{}}

type portSet struct {
	mu sync.Mutex
	at map[int]time.Time
}

const portQuarantine = time.Minute

// claim records p and reports whether it was not handed out recently.
func (s *portSet) claim(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if t, ok := s.at[p]; ok && now.Sub(t) < portQuarantine {
		return false
	}
	if len(s.at) > 4096 {
		for k, t := range s.at {
			if now.Sub(t) >= portQuarantine {
				delete(s.at, k)
			}
		}
	}
	s.at[p] = now
	return true
}
