// Package listen is the accept loop both engines' servers share: a bound on concurrent
// clients, counters, tracked session goroutines and a quiet exit when the server drains.
package listen

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-proxy/baton/proxy/netio"
)

// Counters are the loop's counters (owned by the server's metrics).
type Counters struct {
	Sessions, Accepted, Rejected *atomic.Int64
}

// Loop accepts on ln and runs serve(c) on a goroutine tracked by wg for each client, or
// reject(c) (untracked, it must return quickly) when maxClients() are already connected (read
// per connection, so a reloaded limit applies at once). It
// returns nil once ln is closed while draining() reports true, or the accept error otherwise.
func Loop(ln net.Listener, draining func() bool, maxClients func() int, cnt Counters, wg *sync.WaitGroup, serve, reject func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if draining() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond) // e.g. out of file descriptors: back off
				continue
			}
			return err
		}
		cnt.Accepted.Add(1)
		if n := cnt.Sessions.Add(1); n > int64(maxClients()) {
			cnt.Sessions.Add(-1)
			cnt.Rejected.Add(1)
			go reject(c)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cnt.Sessions.Add(-1)
			serve(netio.Wrap(c))
		}()
	}
}

// Drain waits until every goroutine tracked by wg has ended. If ctx ends first, it calls force
// (which must make the remaining sessions end: close their sockets) and waits again.
func Drain(ctx context.Context, wg *sync.WaitGroup, force func()) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		force()
		<-done
	}
}

// Every runs f every d until stop is closed (a server's housekeeping loop).
func Every(stop <-chan struct{}, d time.Duration, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			f(now)
		}
	}
}
