package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Keys of this file, under <prefix>/<cluster>/:
//   - members/<instance>: the instance serves the cluster (session lease). A failover waits for
//     the acknowledgements of these instances only, not of every baton sharing the etcd.
//   - paused: automatic failover is suspended (no lease: it outlives the instance that set it).
//   - diverged/<node>: the coordinator found node, an old primary, holding changes the current
//     primary lacks (coordinator's lease).

// Serve registers this instance as serving cluster. The key carries the session lease and is
// put back with a new session.
func (s *Store) Serve(ctx context.Context, cluster string) error {
	k := s.key(cluster, "members", s.instance)
	s.obsMu.Lock()
	s.observed[k] = true
	s.obsMu.Unlock()
	_, err := s.cli.Put(ctx, k, "up", clientv3.WithLease(s.sess.Load().Lease()))
	return err
}

// Members lists the live instances that serve cluster.
func (s *Store) Members(ctx context.Context, cluster string) ([]string, error) {
	return s.names(ctx, s.key(cluster, "members"))
}

// Pause records who suspended a cluster's automatic failover, when and why.
type Pause struct {
	By     string    `json:"by"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// SetPaused suspends (p non-nil) or resumes (nil) the cluster's automatic failover. A planned
// switchover and an operator's `baton failover` still run while it is paused.
func (s *Store) SetPaused(ctx context.Context, cluster string, p *Pause) error {
	k := s.key(cluster, "paused")
	if p == nil {
		_, err := s.cli.Delete(ctx, k)
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.cli.Put(ctx, k, string(b))
	return err
}

// Paused returns the cluster's pause; ok is false when automatic failover is not paused.
func (s *Store) Paused(ctx context.Context, cluster string) (p Pause, ok bool, err error) {
	r, err := s.cli.Get(ctx, s.key(cluster, "paused"))
	if err != nil || len(r.Kvs) == 0 {
		return Pause{}, false, err
	}
	if err := json.Unmarshal(r.Kvs[0].Value, &p); err != nil {
		return Pause{}, false, fmt.Errorf("topology: pause of %s: %w", cluster, err)
	}
	return p, true, nil
}

// WatchPaused calls f with the cluster's pause (ok false: not paused) now and at every change,
// until ctx ends or the watch fails.
func (s *Store) WatchPaused(ctx context.Context, cluster string, f func(p Pause, ok bool)) error {
	k := s.key(cluster, "paused")
	r, err := s.cli.Get(ctx, k)
	if err != nil {
		return err
	}
	var p Pause
	f(p, len(r.Kvs) > 0 && json.Unmarshal(r.Kvs[0].Value, &p) == nil)
	for wr := range s.cli.Watch(ctx, k, clientv3.WithRev(r.Header.Revision+1)) {
		for _, ev := range wr.Events {
			var p Pause
			f(p, ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &p) == nil)
		}
	}
	return ctx.Err()
}

// Divergence describes an old primary that holds changes the current primary lacks: it cannot
// follow the new primary as it is, and must be rewound (PostgreSQL) or repaired (MySQL/MariaDB).
type Divergence struct {
	Node    string `json:"node"`
	Primary string `json:"primary"` // the current primary it diverged from
	// Detail gives the positions: PostgreSQL "WAL end 0/5000100 on timeline 1 is past the fork
	// point 0/50000A0 of timeline 2"; MySQL/MariaDB the GTIDs the primary lacks.
	Detail string `json:"detail"`
	// Steps is what the operator runs to bring the node back as a replica.
	Steps string    `json:"steps"`
	Since time.Time `json:"since"`
}

// SetDiverged publishes (d non-nil) or clears (nil) node's divergence. The key carries the
// coordinator's lease; the write is fenced like WriteState.
func (c *Coordinator) SetDiverged(ctx context.Context, node string, d *Divergence) error {
	k := c.s.key(c.cluster, "diverged", node)
	if d == nil {
		return c.fenced(ctx, clientv3.OpDelete(k))
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return c.put(ctx, k, string(b), clientv3.WithLease(c.sess.Lease()))
}

// Diverged lists the cluster's diverged nodes.
func (s *Store) Diverged(ctx context.Context, cluster string) ([]Divergence, error) {
	p := s.key(cluster, "diverged") + "/"
	r, err := s.cli.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	var out []Divergence
	for _, kv := range r.Kvs {
		var d Divergence
		if json.Unmarshal(kv.Value, &d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}
