//go:build linux

package netio

import "syscall"

// poller is one epoll instance and the goroutine that waits on it.
type poller struct {
	epfd int
	fire func(fd int)
}

func newPoller(fire func(fd int)) *poller {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	p := &poller{epfd: epfd, fire: fire}
	go p.loop()
	return p
}

// add watches fd once for readability, EOF or an error.
func (p *poller) add(fd int) bool {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) == nil
}

func (p *poller) del(fd int) {
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
}

func (p *poller) loop() {
	var evs [128]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(p.epfd, evs[:], -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range evs[:n] {
			p.fire(int(ev.Fd))
		}
	}
}
