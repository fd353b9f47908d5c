package chaos

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// monitor polls every instance's status during a test and records violations of "never two
// writable nodes routed to":
//   - for one epoch, every instance at every moment names the same primary (in stable phase);
//   - once some instance has routed writes to the primary of epoch E, no live instance polled
//     later routes writes to a different primary under an older epoch (every instance
//     acknowledged E's failing_over, which moved it to E, before E's primary was promoted).
//
// Only stable samples count: the admin API reads the state and the snapshot one after the other,
// and only in stable phase does the state name the primary the snapshot routes to.
type monitor struct {
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	byEpoch    map[uint64]string // epoch → the primary routed to under it
	maxEpoch   uint64            // the newest epoch seen routing to a primary
	violations []string
	samples    int
}

func startMonitor(t *testing.T, bs ...*baton) *monitor {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{}), byEpoch: map[uint64]string{}}
	go func() {
		defer close(m.done)
		for {
			for _, b := range bs {
				m.sample(b)
			}
			select {
			case <-m.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(m.end)
	return m
}

func (m *monitor) sample(b *baton) {
	st, err := b.status()
	if err != nil || st.Phase != "stable" || st.Primary == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples++
	if p, ok := m.byEpoch[st.Epoch]; ok && p != st.Primary {
		m.violations = append(m.violations, fmt.Sprintf("%s: baton %s routes writes to %s in epoch %d, another instance routed them to %s",
			time.Now().Format("15:04:05.000"), b.name, st.Primary, st.Epoch, p))
	}
	if _, ok := m.byEpoch[st.Epoch]; !ok {
		m.byEpoch[st.Epoch] = st.Primary
	}
	if st.Epoch < m.maxEpoch && m.byEpoch[m.maxEpoch] != st.Primary {
		m.violations = append(m.violations, fmt.Sprintf("%s: baton %s routes writes to %s in epoch %d after %s became the primary of epoch %d",
			time.Now().Format("15:04:05.000"), b.name, st.Primary, st.Epoch, m.byEpoch[m.maxEpoch], m.maxEpoch))
	}
	if st.Epoch > m.maxEpoch {
		m.maxEpoch = st.Epoch
	}
}

func (m *monitor) end() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// check stops the monitor and fails the test on any violation.
func (m *monitor) check(t *testing.T) {
	t.Helper()
	m.end()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.violations {
		t.Errorf("split brain: %s", v)
	}
	if m.samples == 0 {
		t.Errorf("monitor: no stable status sample")
	}
	t.Logf("monitor: %d stable samples, primaries by epoch %v", m.samples, m.byEpoch)
}
