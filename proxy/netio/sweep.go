package netio

import (
	"runtime/debug"
	"time"
)

// Sweep runs a server's parking sweep until stop is closed: every interval (1s when not
// positive), while enabled reports true, kick asks the sessions idle for a whole interval to
// park and returns how many it asked. Once a wave of parking is over (a sweep asks nobody after
// at least freeAfterParks were asked), the stacks and buffers the parked sessions gave back are
// free heap the runtime would keep until the heap grows again: Sweep returns them to the
// operating system, at most once per freeEvery, so that idle clients cost what they hold.
func Sweep(stop <-chan struct{}, interval time.Duration, enabled func() bool, kick func() int) {
	if interval <= 0 {
		interval = time.Second // the setting may be turned on by a reload: look again then
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var kicked int
	var lastFree time.Time
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if !enabled() {
				continue
			}
			n := kick()
			kicked += n
			if n == 0 && kicked >= freeAfterParks && now.Sub(lastFree) >= freeEvery {
				lastFree, kicked = now, 0
				// Twice: buffers parked sessions put in sync.Pools outlive one collection
				// (the pools' victim cache) and are only freed by the next.
				go func() {
					debug.FreeOSMemory()
					debug.FreeOSMemory()
				}()
			}
		}
	}
}

// freeAfterParks and freeEvery bound Sweep's returns of memory (a forced collection costs a few
// milliseconds of CPU per 100 MB of heap).
const (
	freeAfterParks = 1000
	freeEvery      = 10 * time.Second
)
