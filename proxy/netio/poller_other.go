//go:build !linux

package netio

// poller: parking needs epoll; elsewhere Park always declines.
type poller struct{}

func newPoller(func(fd int)) *poller { return nil }
func (p *poller) add(int) bool       { return false }
func (p *poller) del(int)            {}
