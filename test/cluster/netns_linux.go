//go:build linux

package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// NetLab is a set of network namespaces for partition tests: each Netns (a database node, the
// etcd members) is joined to the host's (root) namespace by Lanes veth pairs, one per lane,
// each lane a bridge of its own with a /24 of 10.77+lane.ID.0. Lane 0 carries replication and
// the tests' own connections; the other lanes let two processes of the host reach the same
// namespace by different addresses (baton instance b0 on lane 1, b1 on lane 2), so that a
// partition can cut one of them and not the other.
//
// A cut sets the host end of a lane's veth pair down: the bridge drops every packet for it, in
// both directions, with no reset and no ICMP error (permanent neighbour entries keep ARP from
// failing), as a pulled cable or a dropping firewall would. It needs root and the ip command;
// NetnsAvailable says why not.
type NetLab struct {
	ID    int // the third octet of every lane's subnet
	Lanes int
	logf  func(string, ...any)

	mu  sync.Mutex
	nss []*Netns
	brs []string
}

// Netns is one network namespace of a NetLab.
type Netns struct {
	Name string
	lab  *NetLab
	idx  int
	macs []string // the namespace end's MAC per lane
}

// NetnsAvailable returns nil when partition tests can run here: root, and the ip command.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (ip netns)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs the ip command (iproute2)")
	}
	return nil
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewNetLab creates the lanes' bridges. Close removes everything it created.
func NewNetLab(lanes int, logf func(string, ...any)) (*NetLab, error) {
	if err := NetnsAvailable(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	l := &NetLab{ID: 10 + rand.IntN(240), Lanes: lanes, logf: logf}
	for k := range lanes {
		br := fmt.Sprintf("bt%dl%d", l.ID, k)
		mac := fmt.Sprintf("02:b7:%02x:%02x:00:01", l.ID, k)
		for _, args := range [][]string{
			{"link", "add", br, "address", mac, "type", "bridge", "forward_delay", "0"},
			{"addr", "add", l.hostIP(k) + "/24", "dev", br},
			{"link", "set", br, "up"},
		} {
			if err := ipCmd(args...); err != nil {
				l.Close()
				return nil, err
			}
		}
		l.brs = append(l.brs, br)
	}
	return l, nil
}

func (l *NetLab) subnet(lane int) string { return fmt.Sprintf("10.%d.%d", 77+lane, l.ID) }

// hostIP is the host's address on lane.
func (l *NetLab) hostIP(lane int) string { return l.subnet(lane) + ".1" }

// Add creates a namespace joined to every lane (its addresses: IP(lane)).
func (l *NetLab) Add(name string) (*Netns, error) {
	l.mu.Lock()
	idx := len(l.nss)
	n := &Netns{Name: fmt.Sprintf("bt%d-%s", l.ID, name), lab: l, idx: idx}
	l.nss = append(l.nss, n)
	l.mu.Unlock()
	if err := ipCmd("netns", "add", n.Name); err != nil {
		return nil, err
	}
	if err := n.exec("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	for k := range l.Lanes {
		host, in := n.hostEnd(k), fmt.Sprintf("lane%d", k)
		mac := fmt.Sprintf("02:b8:%02x:%02x:%02x:01", l.ID, k, idx)
		for _, args := range [][]string{
			{"link", "add", host, "type", "veth", "peer", "name", in, "address", mac, "netns", n.Name},
			{"link", "set", host, "master", l.brs[k], "up"},
			{"neigh", "replace", n.IP(k), "lladdr", mac, "nud", "permanent", "dev", l.brs[k]},
		} {
			if err := ipCmd(args...); err != nil {
				return nil, err
			}
		}
		for _, args := range [][]string{
			{"ip", "addr", "add", n.IP(k) + "/24", "dev", in},
			{"ip", "link", "set", in, "up"},
			{"ip", "neigh", "replace", l.hostIP(k), "lladdr", fmt.Sprintf("02:b7:%02x:%02x:00:01", l.ID, k), "nud", "permanent", "dev", in},
		} {
			if err := n.exec(args...); err != nil {
				return nil, err
			}
		}
		n.macs = append(n.macs, mac)
	}
	// Every namespace knows every other one's addresses for good (no ARP to fail during a cut).
	l.mu.Lock()
	others := append([]*Netns(nil), l.nss...)
	l.mu.Unlock()
	for _, o := range others {
		if o == n || len(o.macs) < l.Lanes {
			continue
		}
		for k := range l.Lanes {
			n.exec("ip", "neigh", "replace", o.IP(k), "lladdr", o.macs[k], "nud", "permanent", "dev", fmt.Sprintf("lane%d", k))
			o.exec("ip", "neigh", "replace", n.IP(k), "lladdr", n.macs[k], "nud", "permanent", "dev", fmt.Sprintf("lane%d", k))
		}
	}
	l.logf("cluster: netns %s: %s", n.Name, strings.Join(n.ips(), ", "))
	return n, nil
}

func (n *Netns) ips() []string {
	var out []string
	for k := range n.lab.Lanes {
		out = append(out, n.IP(k))
	}
	return out
}

func (n *Netns) hostEnd(lane int) string { return fmt.Sprintf("bt%dh%d-%d", n.lab.ID, n.idx, lane) }

// IP is the namespace's address on lane.
func (n *Netns) IP(lane int) string { return fmt.Sprintf("%s.%d", n.lab.subnet(lane), 10+n.idx) }

// Command returns the argument list that runs argv inside the namespace.
func (n *Netns) Command(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", n.Name}, argv...)
}

func (n *Netns) exec(argv ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, argv...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), n.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Cut drops every packet on the given lanes (all lanes when none are given), both ways.
func (n *Netns) Cut(lanes ...int) error { return n.setLanes("down", lanes) }

// Heal lets the given lanes (all when none are given) carry packets again.
func (n *Netns) Heal(lanes ...int) error { return n.setLanes("up", lanes) }

func (n *Netns) setLanes(state string, lanes []int) error {
	if len(lanes) == 0 {
		for k := range n.lab.Lanes {
			lanes = append(lanes, k)
		}
	}
	var errs []error
	for _, k := range lanes {
		errs = append(errs, ipCmd("link", "set", n.hostEnd(k), state))
	}
	n.lab.logf("cluster: netns %s: lanes %v %s", n.Name, lanes, state)
	return errors.Join(errs...)
}

// Close deletes the namespaces and bridges. Processes still running in a namespace keep it
// alive until they exit; stop them first.
func (l *NetLab) Close() {
	l.mu.Lock()
	nss, brs := l.nss, l.brs
	l.nss, l.brs = nil, nil
	l.mu.Unlock()
	for _, n := range nss {
		for k := range l.Lanes {
			exec.Command("ip", "link", "del", n.hostEnd(k)).Run()
		}
		exec.Command("ip", "netns", "del", n.Name).Run()
	}
	for _, br := range brs {
		exec.Command("ip", "link", "del", br).Run()
	}
}
