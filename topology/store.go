package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Store errors.
var (
	ErrNotCoordinator = errors.New("topology: this instance is no longer the coordinator")
	ErrStoreClosed    = errors.New("topology: the etcd session has ended")
)

// Phase of a cluster's state.
type Phase string

// Phases (DESIGN §3).
const (
	PhaseStable        Phase = "stable"
	PhaseFailingOver   Phase = "failing_over"
	PhaseSwitchingOver Phase = "switching_over"
)

// ClusterState is the shared `state` key of a cluster. Only the elected coordinator writes it.
type ClusterState struct {
	Epoch   uint64    `json:"epoch"`
	Primary string    `json:"primary"`
	Phase   Phase     `json:"phase"`
	Since   time.Time `json:"since"`
	Reason  string    `json:"reason"`
	// Old is the primary being replaced while Phase is not stable; Candidate the node chosen to
	// replace it, once chosen. They let a new coordinator finish a failover a deposed one began.
	Old       string `json:"old,omitempty"`
	Candidate string `json:"candidate,omitempty"`
}

// Store is one baton instance's view of the shared state in etcd. Keys live under
// <prefix>/<cluster>/: state, observers/<node>/<instance>, coordinator (election),
// and <prefix>/instances/<instance>. Everything an instance puts is tied to its session
// lease: when the instance dies (or is cut off etcd for a TTL) its keys vanish.
//
// A session whose lease is lost (etcd unreachable or without a quorum for a TTL) cannot come
// back. The Store then opens a new one as soon as etcd grants a lease again, registers the
// instance and puts its observer keys back with it; MayWrite stays false until that is done.
//
// Safe for concurrent use. Every blocking call takes a context.
type Store struct {
	cli      *clientv3.Client
	prefix   string
	instance string
	sess     atomic.Pointer[concurrency.Session] // the current session; a lost one is replaced
	ttl      time.Duration
	lastOK   atomic.Int64 // unix nanos of the last successful round trip to etcd; 0 while re-registering
	life     context.Context
	end      context.CancelFunc // ends life: Close
	exited   chan struct{}      // closed when watchLease has returned

	obsMu    sync.Mutex
	observed map[string]bool // observer keys this instance keeps (put back with a new session)
}

// openSession grants a lease (bounded by ctx) and keeps it alive in a new session, which lives
// until it is closed or its lease is lost, not until ctx ends.
func openSession(ctx context.Context, cli *clientv3.Client, ttl int) (*concurrency.Session, error) {
	l, err := cli.Grant(ctx, int64(ttl))
	if err != nil {
		return nil, err
	}
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl), concurrency.WithLease(l.ID))
	if err != nil {
		cli.Revoke(ctx, l.ID)
		return nil, err
	}
	return sess, nil
}

// NewStore opens a session with the given lease TTL and registers the instance.
func NewStore(ctx context.Context, cli *clientv3.Client, prefix, instance string, ttl int) (*Store, error) {
	if instance == "" || strings.Contains(instance, "/") {
		return nil, fmt.Errorf("topology: bad instance name %q", instance)
	}
	if ttl <= 0 {
		ttl = 5
	}
	// The session lives until Close, not until ctx ends (ctx bounds only the set-up).
	sess, err := openSession(ctx, cli, ttl)
	if err != nil {
		return nil, fmt.Errorf("topology: etcd session: %w", err)
	}
	s := &Store{cli: cli, prefix: strings.TrimSuffix(prefix, "/"), instance: instance,
		ttl: time.Duration(ttl) * time.Second, exited: make(chan struct{}), observed: map[string]bool{}}
	s.sess.Store(sess)
	s.life, s.end = context.WithCancel(context.Background())
	s.lastOK.Store(time.Now().UnixNano())
	if _, err := cli.Put(ctx, s.key("instances", instance), time.Now().UTC().Format(time.RFC3339), clientv3.WithLease(sess.Lease())); err != nil {
		s.end()
		sess.Close()
		return nil, fmt.Errorf("topology: registering instance: %w", err)
	}
	go s.watchLease()
	return s, nil
}

// watchLease checks the way to etcd five times per lease TTL and records each success. When
// the session ends it replaces it (renew). It returns when the Store is closed.
func (s *Store) watchLease() {
	defer close(s.exited)
	every := s.ttl / 5
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sess := s.sess.Load()
		select {
		case <-s.life.Done():
			return
		case <-sess.Done():
			if !s.renew(sess, every) {
				return
			}
		case <-t.C:
			ctx, cancel := context.WithTimeout(s.life, every)
			_, err := s.cli.Get(ctx, s.key("instances", s.instance), clientv3.WithCountOnly())
			cancel()
			if err == nil {
				s.lastOK.Store(time.Now().UnixNano())
			}
		}
	}
}

// renew replaces old, a session whose lease was lost, trying every interval until it succeeds
// (true) or the Store is closed (false). MayWrite is false meanwhile.
func (s *Store) renew(old *concurrency.Session, every time.Duration) bool {
	s.lastOK.Store(0)
	old.Orphan() // its keep-alive has ended already; this releases it
	for {
		if err := s.reregister(old); err == nil {
			return true
		}
		select {
		case <-s.life.Done():
			return false
		case <-time.After(every):
		}
	}
}

// reregister opens a new session unless one was opened by an earlier attempt and is alive,
// registers the instance with it, revokes the old lease (keys still tied to it, such as an
// election key won with the old session, vanish now rather than when it expires) and puts the
// observer keys back with the new lease. Only then may the instance write again.
func (s *Store) reregister(old *concurrency.Session) error {
	ctx, cancel := context.WithTimeout(s.life, s.ttl)
	defer cancel()
	cur := s.sess.Load()
	if cur == old || isDone(cur) {
		sess, err := openSession(ctx, s.cli, int(s.ttl/time.Second))
		if err != nil {
			return err
		}
		if cur != old {
			cur.Orphan()
		}
		s.sess.Store(sess) // from now on Observe and Campaign use the new lease
		cur = sess
	}
	if _, err := s.cli.Put(ctx, s.key("instances", s.instance), time.Now().UTC().Format(time.RFC3339), clientv3.WithLease(cur.Lease())); err != nil {
		return err
	}
	s.cli.Revoke(ctx, old.Lease()) // fails when the lease has expired already: nothing to do then
	for _, k := range s.observedKeys() {
		if _, err := s.cli.Put(ctx, k, "up", clientv3.WithLease(cur.Lease())); err != nil {
			return err
		}
	}
	s.lastOK.Store(time.Now().UnixNano())
	return nil
}

func isDone(sess *concurrency.Session) bool {
	select {
	case <-sess.Done():
		return true
	default:
		return false
	}
}

// observedKeys lists the observer keys this instance keeps.
func (s *Store) observedKeys() []string {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	out := make([]string, 0, len(s.observed))
	for k := range s.observed {
		out = append(out, k)
	}
	return out
}

// MayWrite is the write-lease rule (DESIGN §3): an instance sends writes only while it is sure
// its lease is alive. It turns false half a TTL after the last successful round trip to etcd,
// well before the server can expire the lease and another instance fail over, and when the
// session has ended, until a new session has registered the instance again. Reads do not
// depend on it.
func (s *Store) MayWrite() bool {
	select {
	case <-s.sess.Load().Done():
		return false
	default:
	}
	return time.Since(time.Unix(0, s.lastOK.Load())) < s.ttl/2
}

func (s *Store) key(parts ...string) string {
	return path.Join(append([]string{s.prefix}, parts...)...)
}

// Instance is this instance's name.
func (s *Store) Instance() string { return s.instance }

// Done is closed when the current session's lease can no longer be kept alive. From then on
// the instance must not send writes (DESIGN §3, write lease): another instance may be failing
// over. The Store opens a new session when etcd answers again; call Done again to watch it.
func (s *Store) Done() <-chan struct{} { return s.sess.Load().Done() }

// Close revokes the lease (the instance's keys vanish at once) and ends the session.
func (s *Store) Close() error {
	s.end()
	<-s.exited
	return s.sess.Load().Close()
}

// Observe records whether this instance's probes of node succeed: the observer key exists
// (with the session lease) while they do, and is deleted when they fail.
func (s *Store) Observe(ctx context.Context, cluster, node string, ok bool) error {
	k := s.key(cluster, "observers", node, s.instance)
	s.obsMu.Lock()
	if ok {
		s.observed[k] = true
	} else {
		delete(s.observed, k)
	}
	s.obsMu.Unlock()
	var err error
	if ok {
		_, err = s.cli.Put(ctx, k, "up", clientv3.WithLease(s.sess.Load().Lease()))
	} else {
		_, err = s.cli.Delete(ctx, k)
	}
	return err
}

// Observers lists the instances whose probes of node currently succeed.
func (s *Store) Observers(ctx context.Context, cluster, node string) ([]string, error) {
	return s.names(ctx, s.key(cluster, "observers", node))
}

// Instances lists the live baton instances.
func (s *Store) Instances(ctx context.Context) ([]string, error) {
	return s.names(ctx, s.key("instances"))
}

// names lists the last path element of every key under dir.
func (s *Store) names(ctx context.Context, dir string) ([]string, error) {
	p := dir + "/"
	r, err := s.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), p))
	}
	return out, nil
}

// State reads a cluster's state; ok is false when none was written yet.
func (s *Store) State(ctx context.Context, cluster string) (st ClusterState, ok bool, err error) {
	st, ok, _, err = s.StateRev(ctx, cluster)
	return st, ok, err
}

// StateRev is State with the store revision it was read at: WatchStateFrom(rev) then misses
// no later change.
func (s *Store) StateRev(ctx context.Context, cluster string) (st ClusterState, ok bool, rev int64, err error) {
	r, err := s.cli.Get(ctx, s.key(cluster, "state"))
	if err != nil {
		return st, false, 0, err
	}
	rev = r.Header.Revision
	if len(r.Kvs) == 0 {
		return st, false, rev, nil
	}
	if err := json.Unmarshal(r.Kvs[0].Value, &st); err != nil {
		return st, false, rev, fmt.Errorf("topology: state of %s: %w", cluster, err)
	}
	return st, true, rev, nil
}

// WatchState calls f with every new state of the cluster until ctx ends.
func (s *Store) WatchState(ctx context.Context, cluster string, f func(ClusterState)) {
	s.WatchStateFrom(ctx, cluster, 0, f)
}

// WatchStateFrom calls f with every state of the cluster written after revision rev (0: from
// now) until ctx ends or the watch fails.
func (s *Store) WatchStateFrom(ctx context.Context, cluster string, rev int64, f func(ClusterState)) {
	var opts []clientv3.OpOption
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev+1))
	}
	for wr := range s.cli.Watch(ctx, s.key(cluster, "state"), opts...) {
		for _, ev := range wr.Events {
			var st ClusterState
			if ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &st) == nil {
				f(st)
			}
		}
	}
}

// Coordinator is this instance's won election for one cluster. Its writes are fenced: they
// succeed only while the election key it won still exists.
type Coordinator struct {
	s       *Store
	cluster string
	e       *concurrency.Election
	// key and rev identify the election key won, kept because the Election forgets them on
	// Resign; sess is the session it was won with (its end ends the role).
	key  string
	rev  int64
	sess *concurrency.Session
}

// Campaign blocks until this instance is the cluster's coordinator (or ctx ends). It fails with
// ErrStoreClosed while the instance has no live session.
func (s *Store) Campaign(ctx context.Context, cluster string) (*Coordinator, error) {
	sess := s.sess.Load()
	if isDone(sess) {
		return nil, ErrStoreClosed
	}
	e := concurrency.NewElection(sess, s.key(cluster, "coordinator"))
	if err := e.Campaign(ctx, s.instance); err != nil {
		return nil, err
	}
	return &Coordinator{s: s, cluster: cluster, e: e, key: e.Key(), rev: e.Rev(), sess: sess}, nil
}

// Leader names the current coordinator of a cluster ("" if none).
func (s *Store) Leader(ctx context.Context, cluster string) (string, error) {
	e := concurrency.NewElection(s.sess.Load(), s.key(cluster, "coordinator"))
	r, err := e.Leader(ctx)
	if errors.Is(err, concurrency.ErrElectionNoLeader) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(r.Kvs[0].Value), nil
}

// WriteState writes the cluster state if, and only if, this instance still holds the election
// (a Txn comparing the election key's creation revision): a deposed coordinator cannot write.
func (c *Coordinator) WriteState(ctx context.Context, st ClusterState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return c.put(ctx, c.s.key(c.cluster, "state"), string(b))
}

// Resign gives the coordinator role up.
func (c *Coordinator) Resign(ctx context.Context) error { return c.e.Resign(ctx) }
