//go:build !linux

package cluster

import "errors"

// NetLab is Linux-only (network namespaces); see netns_linux.go.
type NetLab struct {
	ID, Lanes int
}

// Netns is Linux-only.
type Netns struct{ Name string }

var errNoNetns = errors.New("needs Linux network namespaces (ip netns)")

// NetnsAvailable reports that partition tests cannot run here.
func NetnsAvailable() error { return errNoNetns }

// NewNetLab fails: not Linux.
func NewNetLab(lanes int, logf func(string, ...any)) (*NetLab, error) { return nil, errNoNetns }

// Add fails: not Linux.
func (l *NetLab) Add(name string) (*Netns, error) { return nil, errNoNetns }

// Close does nothing.
func (l *NetLab) Close() {}

// IP is empty: not Linux.
func (n *Netns) IP(lane int) string { return "" }

// Command returns argv unchanged.
func (n *Netns) Command(argv ...string) []string { return argv }

// Cut fails: not Linux.
func (n *Netns) Cut(lanes ...int) error { return errNoNetns }

// Heal fails: not Linux.
func (n *Netns) Heal(lanes ...int) error { return errNoNetns }
