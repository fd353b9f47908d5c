package pool

import (
	"sync/atomic"
	"time"
)

// WaitBuckets are the upper bounds, in seconds, of the acquire-wait histogram: fine enough below
// a second for a queue's p99 to be read from it.
var WaitBuckets = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// waitHist counts how long Acquire calls waited for a connection (a free one, a returned one or
// room to dial), whatever the outcome. Safe for concurrent use.
type waitHist struct {
	counts [16]atomic.Uint64 // per bucket (len(WaitBuckets)+1); the last is +Inf
	sumNS  atomic.Int64
}

func (h *waitHist) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(WaitBuckets) && s > WaitBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

// WaitStats is a snapshot of a node's acquire-wait histogram: Cumulative[i] counts the waits of
// at most WaitBuckets[i] seconds; Count and Sum (seconds) cover all of them.
type WaitStats struct {
	Cumulative []uint64
	Count      uint64
	Sum        float64
}

// Waits returns the node's acquire-wait histogram.
func (n *Node[C]) Waits() WaitStats {
	var st WaitStats
	var run uint64
	for i := range n.waits.counts {
		run += n.waits.counts[i].Load()
		if i < len(WaitBuckets) {
			st.Cumulative = append(st.Cumulative, run)
		}
	}
	st.Count = run
	st.Sum = time.Duration(n.waits.sumNS.Load()).Seconds()
	return st
}
