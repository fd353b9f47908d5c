package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// This file holds the keys of the failover protocol (DESIGN §3): acknowledgements, the failover
// history, and operator requests (failover, switchover, rejoin) handed to the coordinator.

// Ack records that this instance has stopped writing to the old primary for epoch.
func (s *Store) Ack(ctx context.Context, cluster string, epoch uint64) error {
	_, err := s.cli.Put(ctx, s.key(cluster, "acks", strconv.FormatUint(epoch, 10), s.instance), "stopped",
		clientv3.WithLease(s.sess.Load().Lease()))
	return err
}

// Acks lists the instances that acknowledged epoch.
func (s *Store) Acks(ctx context.Context, cluster string, epoch uint64) ([]string, error) {
	return s.names(ctx, s.key(cluster, "acks", strconv.FormatUint(epoch, 10)))
}

// Step is one timed step of a failover or switchover.
type Step struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
}

// Event is one entry of a cluster's failover history.
type Event struct {
	Epoch    uint64        `json:"epoch"`
	Kind     string        `json:"kind"` // failover, switchover, initial, adopt
	From     string        `json:"from,omitempty"`
	To       string        `json:"to,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []Step        `json:"steps,omitempty"`
	Error    string        `json:"error,omitempty"`
	By       string        `json:"by,omitempty"` // the coordinating instance
}

// historyLen bounds the history kept in etcd.
const historyLen = 50

// History returns a cluster's failover history, oldest first.
func (s *Store) History(ctx context.Context, cluster string) ([]Event, error) {
	r, err := s.cli.Get(ctx, s.key(cluster, "history"))
	if err != nil || len(r.Kvs) == 0 {
		return nil, err
	}
	var h []Event
	if err := json.Unmarshal(r.Kvs[0].Value, &h); err != nil {
		return nil, fmt.Errorf("topology: history of %s: %w", cluster, err)
	}
	return h, nil
}

// AppendHistory adds ev to the cluster's history (fenced like WriteState).
func (c *Coordinator) AppendHistory(ctx context.Context, ev Event) error {
	h, err := c.s.History(ctx, c.cluster)
	if err != nil {
		return err
	}
	h = append(h, ev)
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return c.put(ctx, c.s.key(c.cluster, "history"), string(b))
}

// put writes key only while this instance holds the election.
func (c *Coordinator) put(ctx context.Context, key, val string, opts ...clientv3.OpOption) error {
	return c.fenced(ctx, clientv3.OpPut(key, val, opts...))
}

// fenced runs op only while this instance holds the election (the election key it won still
// exists with the same creation revision).
func (c *Coordinator) fenced(ctx context.Context, op clientv3.Op) error {
	r, err := c.s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(c.key), "=", c.rev)).
		Then(op).
		Commit()
	if err != nil {
		return err
	}
	if !r.Succeeded {
		return ErrNotCoordinator
	}
	return nil
}

// Lost is closed when this instance can no longer be sure it is the coordinator (its session
// ended). Writes through the Coordinator fail from then on anyway.
func (c *Coordinator) Lost() <-chan struct{} { return c.sess.Done() }

// Cluster is the cluster this coordinator coordinates.
func (c *Coordinator) Cluster() string { return c.cluster }

// Request is an operator's order to a cluster's coordinator.
type Request struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // failover, switchover, rejoin
	To    string `json:"to,omitempty"`
	Node  string `json:"node,omitempty"` // rejoin: the node to re-attach
	Force bool   `json:"force,omitempty"`
	From  string `json:"from,omitempty"` // the instance that took the request
}

// Result answers a Request.
type Result struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Primary string `json:"primary,omitempty"`
	Event   *Event `json:"event,omitempty"`
}

// Submit hands req to the cluster's coordinator (whichever instance that is) and waits for its
// result until ctx ends. The request key carries this instance's lease: if it dies, the request
// goes with it.
func (s *Store) Submit(ctx context.Context, cluster string, req Request) (Result, error) {
	if req.ID == "" {
		req.ID = s.instance + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	req.From = s.instance
	b, err := json.Marshal(req)
	if err != nil {
		return Result{}, err
	}
	rkey := s.key(cluster, "results", req.ID)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	put, err := s.cli.Put(ctx, s.key(cluster, "requests", req.ID), string(b), clientv3.WithLease(s.sess.Load().Lease()))
	if err != nil {
		return Result{}, err
	}
	defer s.cli.Delete(context.WithoutCancel(ctx), s.key(cluster, "requests", req.ID))
	wch := s.cli.Watch(wctx, rkey, clientv3.WithRev(put.Header.Revision))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return Result{}, err
		}
		for _, ev := range wr.Events {
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			var res Result
			if err := json.Unmarshal(ev.Kv.Value, &res); err != nil {
				return Result{}, err
			}
			s.cli.Delete(context.WithoutCancel(ctx), rkey)
			return res, nil
		}
	}
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("no answer from the coordinator of %s: %w", cluster, ctx.Err())
	}
	return Result{}, ErrStoreClosed
}

// Requests returns the pending requests of a cluster and the revision to watch from.
func (s *Store) Requests(ctx context.Context, cluster string) ([]Request, int64, error) {
	r, err := s.cli.Get(ctx, s.key(cluster, "requests")+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	var out []Request
	for _, kv := range r.Kvs {
		var q Request
		if json.Unmarshal(kv.Value, &q) == nil {
			out = append(out, q)
		}
	}
	return out, r.Header.Revision, nil
}

// WatchRequests delivers requests put after revision rev until ctx ends.
func (s *Store) WatchRequests(ctx context.Context, cluster string, rev int64) <-chan Request {
	out := make(chan Request, 8)
	go func() {
		defer close(out)
		for wr := range s.cli.Watch(ctx, s.key(cluster, "requests")+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			for _, ev := range wr.Events {
				var q Request
				if ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &q) == nil {
					select {
					case out <- q:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out
}

// Answer publishes the result of a request (fenced) and removes the request.
func (c *Coordinator) Answer(ctx context.Context, id string, res Result) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	// The result outlives neither this coordinator's session nor a minute: Submit deletes it
	// once read.
	lease, err := c.s.cli.Grant(ctx, 60)
	if err != nil {
		return err
	}
	if err := c.put(ctx, c.s.key(c.cluster, "results", id), string(b), clientv3.WithLease(lease.ID)); err != nil {
		return err
	}
	_, err = c.s.cli.Delete(ctx, c.s.key(c.cluster, "requests", id))
	return err
}

// TTL is the instance's session lease TTL.
func (s *Store) TTL() time.Duration { return s.ttl }

// Alert is the coordinator's standing complaint about a cluster it cannot act on by itself: an
// automatic failover it refused (failover.auto off, within failover.min_interval), with the
// command that resolves it.
type Alert struct {
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
	By      string    `json:"by"` // the coordinating instance
}

// SetAlert publishes the cluster's alert ("" clears it). The key carries the coordinator's
// session lease, so an alert disappears with the coordinator that raised it; the write is
// fenced like WriteState.
func (c *Coordinator) SetAlert(ctx context.Context, msg string) error {
	k := c.s.key(c.cluster, "alert")
	if msg == "" {
		return c.fenced(ctx, clientv3.OpDelete(k))
	}
	b, err := json.Marshal(Alert{Message: msg, Since: time.Now().UTC(), By: c.s.instance})
	if err != nil {
		return err
	}
	return c.put(ctx, k, string(b), clientv3.WithLease(c.sess.Lease()))
}

// Alert returns the cluster's alert; ok is false when there is none.
func (s *Store) Alert(ctx context.Context, cluster string) (a Alert, ok bool, err error) {
	r, err := s.cli.Get(ctx, s.key(cluster, "alert"))
	if err != nil || len(r.Kvs) == 0 {
		return Alert{}, false, err
	}
	if err := json.Unmarshal(r.Kvs[0].Value, &a); err != nil {
		return Alert{}, false, fmt.Errorf("topology: alert of %s: %w", cluster, err)
	}
	return a, true, nil
}
