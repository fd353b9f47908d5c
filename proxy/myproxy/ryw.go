package myproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// Consistency read_your_writes by GTID.
//
// After a unit that may have committed a write on the primary (an autocommit statement, or the
// end of a transaction), the session learns the write's position:
//   - MariaDB: the last_gtid system variable from the OK packets' session-state information
//     (baton tracks it on every backend connection: track.go; a unit whose OK packets report
//     none committed nothing), else — the client replaced the tracking list with its own —
//     "SELECT @@last_gtid" on the same connection after the answer went to the client.
//     Positions of several writes merge per replication domain.
//   - MySQL (untested: no MySQL server here): "SELECT @@global.gtid_executed" on the same
//     connection, a superset of the session's own GTIDs.
//
// A later read outside a transaction goes to a readable replica whose last probed position
// (health snapshot, NodeState.ReplayPos = @@gtid_current_pos) covers the session's position, or
// that a wait already proved to hold it, with no wait. Otherwise baton picks one replica (the
// sticky one, else one drawn by weight; router.PickToWait) and runs MASTER_GTID_WAIT (MySQL:
// WAIT_FOR_EXECUTED_GTID_SET) there for at most read_your_writes_wait: the read runs there when
// the replica caught up, else on the primary (at once when read_your_writes_wait is 0). When the
// position cannot be learned, the session reads from the primary from then on (s.wrote), as
// without GTIDs.
//
// The position is kept across COM_RESET_CONNECTION and COM_CHANGE_USER: they do not undo writes.

// posQueryTimeout bounds the round trips baton injects for read_your_writes beyond their own
// wait (reading the position; network slack around a wait).
const posQueryTimeout = 5 * time.Second

// errNotPosition: the server answered with something that is not a GTID position.
var errNotPosition = errors.New("myproxy: not a GTID position")

// behind lists, in read_your_writes mode, the readable replicas not known to hold the session's
// writes (as of the last probe, or a wait); reads avoid them.
func (s *session) behind(snap *topology.Snapshot) map[string]bool {
	if s.gtid == "" || snap == nil || s.srv.config().Consistency != topology.ReadYourWrites {
		return nil
	}
	var out map[string]bool
	for _, i := range snap.Readable {
		n := &snap.Nodes[i]
		if n.Name == s.caughtUp {
			continue
		}
		if !s.gtidMy {
			if c, ok := health.MariaGTIDCovers(n.ReplayPos, s.gtid); ok && c {
				continue
			}
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[n.Name] = true
	}
	return out
}

// noteWrite learns, in read_your_writes mode, the position of what unit u may have committed
// on be. wasInTx: the session was in a transaction before u.
func (s *session) noteWrite(u *unit, be *backend, wasInTx bool) {
	if s.srv.config().Consistency != topology.ReadYourWrites || s.inTx || be.broken {
		return
	}
	if be.node.name != s.primaryName() {
		return // a replica's read-only transaction, or a cursor that lives there
	}
	if c := u.cmd[0]; c != mywire.ComQuery && c != mywire.ComStmtExecute {
		return // prepares, fetches, COM_INIT_DB … write nothing
	}
	if !wasInTx && (u.class.Route != router.Primary || (u.class.SessionState && !u.class.Multi)) {
		return // a read the primary served, or a SET / USE
	}
	if be.gtidTracked && !u.gtidTracked {
		return // the server tracks last_gtid on be and reported none: nothing was committed
	}
	pos, my, err := s.writePosition(u, be)
	if err != nil {
		if be.broken {
			s.drop(be)
		}
		s.wrote = true // where the write went is unknown: read from the primary from now on
		s.srv.metrics.gtidFallbacks.Add(1)
		s.srv.log.Debug("read_your_writes: cannot learn the write's GTID; the session reads from the primary",
			"cluster", s.srv.config().Name, "node", be.node.name, "error", err)
		return
	}
	if my != s.gtidMy {
		s.gtid, s.gtidMy = "", my // another server flavour: an earlier position means nothing here
	}
	if !my {
		if pos, err = health.MergeMariaGTIDs(s.gtid, pos); err != nil {
			panic("BUG: myproxy: unchecked GTID position: " + err.Error())
		}
	}
	if pos != s.gtid {
		s.gtid, s.caughtUp = pos, ""
	}
}

// writePosition returns the position of the last write on be: a MariaDB GTID list, or a MySQL
// GTID set (my).
func (s *session) writePosition(u *unit, be *backend) (pos string, my bool, err error) {
	my = !strings.Contains(be.cc.ServerVersion, "MariaDB")
	if !my && u.gtidTracked {
		if _, err := health.ParseMariaPos(u.gtid); err != nil {
			return "", false, fmt.Errorf("%w: last_gtid %q", errNotPosition, u.gtid)
		}
		return u.gtid, false, nil
	}
	q := "SELECT @@last_gtid"
	if my {
		q = "SELECT @@global.gtid_executed"
	}
	s.w.Flush() // the client has its answer while baton asks
	v, null, err := be.queryValue(q, posQueryTimeout)
	switch {
	case err != nil:
		return "", my, err
	case null:
		return "", my, fmt.Errorf("%w: NULL", errNotPosition)
	case my && !isGTIDSetText(v):
		return "", my, fmt.Errorf("%w: %q", errNotPosition, v)
	case !my:
		if _, err := health.ParseMariaPos(v); err != nil {
			return "", my, fmt.Errorf("%w: %q", errNotPosition, v)
		}
	}
	return v, my, nil
}

// isGTIDSetText reports whether v looks like a MySQL GTID set (UUIDs, tags, intervals): it must
// be safe to quote in a statement.
func isGTIDSetText(v string) bool {
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case strings.ContainsRune(":-,_ \n\r\t", r):
		default:
			return false
		}
	}
	return true
}

// awaitReplica is called when pick sent a unit of class cls to the primary. When that was only
// because no replica is known to hold the session's writes, it waits (at most the cluster's
// read_your_writes_wait) for one replica to catch up and returns the session's connection to
// it; nil means use the primary.
func (s *session) awaitReplica(cls router.Class, avoid map[*nodePool]bool) *backend {
	if s.gtid == "" || s.wrote || s.inTx || s.srv.config().Consistency != topology.ReadYourWrites {
		return nil
	}
	snap := s.srv.live.Load()
	if snap == nil {
		return nil
	}
	p := s.placement(snap, nil)
	if !router.WantsReplica(cls, p) || router.ReadsPrimary(cls, p) {
		return nil // (primary_read_weight: the primary is a read candidate that has the writes)
	}
	wait := s.srv.config().ReadYourWritesWait.D()
	if wait <= 0 {
		s.srv.metrics.gtidFallbacks.Add(1)
		return nil
	}
	name := router.PickToWait(snap, p.Sticky, wait, s.srv.config().ProbeInterval.D(), s.missed, time.Now(), func(name string) bool {
		np := s.srv.node(name)
		return np == nil || avoid[np]
	}, rand.IntN)
	if name == "" {
		s.srv.metrics.gtidFallbacks.Add(1)
		s.srv.log.Debug("read_your_writes: no replica close enough to wait on; the read goes to the primary",
			"cluster", s.srv.config().Name, "gtid", s.gtid)
		return nil
	}
	np := s.srv.node(name)
	be, err := s.acquire(np)
	if err != nil {
		avoid[np] = true
		s.srv.metrics.gtidFallbacks.Add(1)
		s.srv.log.Debug("read_your_writes: no connection to wait on; the read goes to the primary",
			"cluster", s.srv.config().Name, "node", np.name, "error", err)
		return nil
	}
	s.srv.metrics.gtidWaits.Add(1)
	s.active.Store(be)
	reached, err := s.gtidWait(be, wait)
	s.active.Store(nil)
	if be.broken {
		s.drop(be)
		avoid[np] = true
	}
	if err != nil || !reached {
		s.missed.Add(np.name, time.Now())
		s.srv.metrics.gtidFallbacks.Add(1)
		s.srv.log.Debug("read_your_writes: the replica did not catch up in time; the read goes to the primary",
			"cluster", s.srv.config().Name, "node", np.name, "gtid", s.gtid, "wait", wait, "error", err)
		return nil
	}
	s.caughtUp = np.name
	return be
}

// gtidWait waits on replica connection be until it has applied the session's writes or wait
// passed; reached reports the former.
func (s *session) gtidWait(be *backend, wait time.Duration) (reached bool, err error) {
	fn := "MASTER_GTID_WAIT"
	if s.gtidMy {
		fn = "WAIT_FOR_EXECUTED_GTID_SET"
	}
	secs := strconv.FormatFloat(wait.Seconds(), 'f', -1, 64)
	// s.gtid holds only characters isGTIDSetText or MergeMariaGTIDs let through: no quotes.
	v, null, err := be.queryValue("SELECT "+fn+"('"+s.gtid+"', "+secs+")", wait+posQueryTimeout)
	if err != nil {
		return false, err
	}
	return !null && v == "0", nil // MariaDB: 0 reached, -1 timed out; MySQL: 0 reached, 1 timed out
}
