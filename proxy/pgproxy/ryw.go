package pgproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/baton-proxy/baton/proxy/pgwire"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// Consistency read_your_writes on PostgreSQL.
//
// After a write outside a transaction, or a COMMIT, baton asks the primary for its WAL insert
// position on the same connection (lsnQuery, answered after the client has its reply) and keeps
// the highest one as the session's position (session.lsn). A later read outside a transaction
// avoids every replica whose last probed replay LSN is below it (behind), unless a wait already
// proved that replica holds it. When that leaves no replica, baton picks one (the sticky one,
// else one drawn by weight; router.PickToWait) and polls its pg_last_wal_replay_lsn() on the
// session's connection to it, at once and then with a backoff from 1 ms to 50 ms, for at most
// read_your_writes_wait. The read runs there when the replica
// has replayed the position, else on the primary (at once when read_your_writes_wait is 0).
// On a healthy cluster the first poll usually succeeds: streaming replication on a LAN applies a
// commit in well under a millisecond, while the probes report replay positions only every
// probe_interval.

// rywBackoff bounds the pause between two polls of a replica's replay position.
const (
	rywFirstPause = time.Millisecond
	rywMaxPause   = 50 * time.Millisecond
)

// rywQueryTimeout bounds one poll beyond the wait itself (network slack).
const rywQueryTimeout = 5 * time.Second

// replayQuery asks a replica how far it has replayed WAL (NULL when it is not in recovery).
const replayQuery = "SELECT pg_last_wal_replay_lsn()::text"

// errNotStandby: the node answered the replay query with NULL; it is no longer a replica.
var errNotStandby = errors.New("the node is not in recovery")

// placement is the router's view of the session for a read outside a transaction.
func (s *session) placement() router.Placement {
	p := router.Placement{
		Pinned:        s.pins != 0 || s.serializable,
		Consistency:   s.srv.config().Consistency,
		StateFull:     len(s.history)-s.histBase >= s.srv.config().Limits.MaxSessionState,
		PrimaryWeight: s.srv.config().PrimaryReadWeight,
	}
	if s.replica != nil && !s.replica.broken {
		p.Sticky = s.replica.node.name
	} else if s.replica == nil {
		p.Sticky = s.sticky
	}
	return p
}

// awaitReplica is called when pick sent a unit of class cls to the primary. When that was only
// because no replica is known to have replayed the session's last write, it waits (at most the
// cluster's read_your_writes_wait) for one replica to do so and returns the session's connection
// to it; nil means use the primary. avoid lists replicas that already failed for this unit.
func (s *session) awaitReplica(cls router.Class, avoid map[*nodePool]bool) *backend {
	cfg := s.srv.config()
	if s.lsn == 0 || s.txStatusNow() != 'I' || cfg.Consistency != topology.ReadYourWrites {
		return nil
	}
	snap := s.srv.live.Load()
	if snap == nil || len(snap.Readable) == 0 {
		return nil
	}
	p := s.placement()
	if !router.WantsReplica(cls, p) || router.ReadsPrimary(cls, p) {
		return nil // (primary_read_weight: the primary is a read candidate that has the writes)
	}
	wait := cfg.ReadYourWritesWait.D()
	if wait <= 0 {
		s.srv.metrics.rywFallbacks.Add(1)
		return nil
	}
	name := router.PickToWait(snap, p.Sticky, wait, cfg.ProbeInterval.D(), s.missed, time.Now(), func(name string) bool {
		np := s.srv.node(name)
		return np == nil || avoid[np]
	}, rand.IntN)
	if name == "" {
		s.srv.metrics.rywFallbacks.Add(1)
		return nil
	}
	np := s.srv.node(name)
	be, err := s.acquire(np)
	if err != nil {
		s.srv.metrics.rywFallbacks.Add(1)
		s.srv.log.Debug("read_your_writes: no connection to wait on; the read goes to the primary",
			"cluster", cfg.Name, "node", name, "error", err)
		return nil
	}
	s.srv.metrics.rywWaits.Add(1)
	reached, err := be.awaitReplay(s.lsn, wait)
	if be.broken {
		s.drop(be)
	}
	if err != nil || !reached {
		s.missed.Add(name, time.Now())
		s.srv.metrics.rywFallbacks.Add(1)
		s.srv.log.Debug("read_your_writes: the replica did not replay the session's write in time; the read goes to the primary",
			"cluster", cfg.Name, "node", name, "lsn", formatLSN(s.lsn), "wait", wait, "error", err)
		return nil
	}
	s.caught, s.caughtLSN = name, s.lsn
	return be
}

// awaitReplay polls the replica on b until it has replayed WAL up to target or wait has passed;
// reached reports the former. An I/O or protocol error closes b.
func (b *backend) awaitReplay(target uint64, wait time.Duration) (reached bool, err error) {
	deadline := time.Now().Add(wait)
	pause := rywFirstPause
	for {
		v, null, err := b.queryValue(replayQuery, time.Until(deadline)+rywQueryTimeout)
		if err != nil {
			return false, err
		}
		if null {
			return false, errNotStandby
		}
		if parseLSN(v) >= target {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, rywMaxPause)
	}
}

// queryValue runs q, whose answer is at most one row of one column, on b and returns the value
// (null: SQL NULL or no row). An I/O or protocol error closes b (its stream is out of step); an
// ErrorResponse is returned as an error and leaves b usable.
func (b *backend) queryValue(q string, timeout time.Duration) (val string, null bool, err error) {
	b.conn.SetDeadline(time.Now().Add(timeout))
	defer b.conn.SetDeadline(time.Time{})
	if _, err := b.w.Write(pgwire.AppendQuery(nil, q)); err != nil {
		b.close()
		return "", false, err
	}
	if err := b.w.Flush(); err != nil {
		b.close()
		return "", false, err
	}
	null = true
	var qerr error
	for {
		f, err := b.rd.Next()
		if err != nil {
			b.close()
			return "", false, err
		}
		switch f[0] {
		case 'D': // DataRow: int16 column count, int32 length (-1: NULL), value
			body := pgwire.Body(f)
			if len(body) < 6 || int(body[0])<<8|int(body[1]) != 1 {
				b.close()
				return "", false, errors.New("malformed DataRow")
			}
			n := int(int32(be32(body[2:6])))
			if n >= 0 && 6+n <= len(body) {
				val, null = string(body[6:6+n]), false
			}
		case 'E':
			qerr = fmt.Errorf("server error %s", pgwire.ErrorCode(pgwire.Body(f)))
		case 'Z':
			if qerr != nil {
				return "", false, qerr
			}
			if len(f) < 6 || f[5] != 'I' {
				b.close()
				return "", false, errors.New("the connection is not idle after the query")
			}
			return val, null, nil
		}
	}
}

// formatLSN prints an LSN the way PostgreSQL does (X/Y).
func formatLSN(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, uint32(v)) }
