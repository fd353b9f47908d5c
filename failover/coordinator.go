package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// Manager runs one cluster's share of the control plane in one baton instance: it campaigns for
// the cluster's coordinator role and, while it holds it, keeps the shared state, detects a dead
// primary, fails over, runs switchovers and answers operators' requests (DESIGN §3).
type Manager struct {
	cfg   func() *topology.Cluster
	live  *topology.Live
	store *topology.Store
	eng   Engine
	log   *slog.Logger

	mu      sync.Mutex
	lastPos map[string]string    // the newest position seen per primary (for max_data_loss)
	fenced  map[string]time.Time // when a node was last fenced: the upkeep's rate limit
	refused string               // the last refusal logged (logged once)
	retryAt time.Time            // an unfinished failover is retried from then on
	backoff time.Duration        // the wait before the next retry (doubles, up to maxBackoff)
	primary string               // the epoch's primary as last read (tick)

	diverged  map[string]string    // published divergence detail per node ("" none)
	divergeAt map[string]time.Time // when a node was last checked for divergence
}

// Retry pacing of a failover that could not finish (no candidate answered, promote failed).
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// retryLater pushes the next attempt of an unfinished failover back.
func (m *Manager) retryLater() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backoff = min(max(2*m.backoff, minBackoff), maxBackoff)
	m.retryAt = time.Now().Add(m.backoff)
}

// mayRetry reports whether an unfinished failover may be retried now.
func (m *Manager) mayRetry() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !time.Now().Before(m.retryAt)
}

// NewManager returns the manager of one cluster. cfg returns the cluster's current
// configuration (it may be reloaded), live its health snapshots (the instance's own probes).
func NewManager(cfg func() *topology.Cluster, live *topology.Live, store *topology.Store, eng Engine, log *slog.Logger) *Manager {
	return &Manager{cfg: cfg, live: live, store: store, eng: eng, log: log,
		lastPos: map[string]string{}, fenced: map[string]time.Time{},
		diverged: map[string]string{}, divergeAt: map[string]time.Time{}}
}

// Run campaigns for the coordinator role and coordinates while elected, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	name := m.cfg().Name
	for ctx.Err() == nil {
		co, err := m.store.Campaign(ctx, name)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("coordinator campaign failed; retrying", "cluster", name, "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		m.log.Info("coordinator elected", "cluster", name, "instance", m.store.Instance())
		m.lead(ctx, co)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		co.Resign(rctx)
		cancel()
		m.log.Info("coordinator role ended", "cluster", name, "instance", m.store.Instance())
	}
}

// lead coordinates until the role or ctx is lost.
func (m *Manager) lead(ctx context.Context, co *topology.Coordinator) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-co.Lost():
			cancel()
		case <-lctx.Done():
		}
	}()
	name := co.Cluster()
	// A refusal is judged afresh: an alert left by an earlier coordinator (whose instance still
	// runs, so its lease keeps the key) is withdrawn, and raised again if it still holds.
	m.mu.Lock()
	m.refused = ""
	m.mu.Unlock()
	m.dropAlert(lctx, co)
	pending, rev, err := m.store.Requests(lctx, name)
	if err != nil {
		return
	}
	reqs := m.store.WatchRequests(lctx, name, rev)
	var downSince time.Time
	for lctx.Err() == nil {
		changed := m.live.Changed()
		if len(pending) > 0 {
			r := pending[0]
			pending = pending[1:]
			m.handle(lctx, co, r)
			continue
		}
		var suspect bool
		downSince, suspect = m.tick(lctx, co, downSince)
		// Look again at the next snapshot, or after a probe interval — or the moment the grace
		// of a primary seen dead runs out, not up to a probe interval later. While this
		// instance's own probes fail the primary, the other instances' observations are polled
		// closely: the last one may be withdrawn at any moment.
		wait := m.cfg().ProbeInterval.D()
		if suspect {
			wait = min(wait, suspectPoll)
		}
		if !downSince.IsZero() {
			if r := time.Until(downSince.Add(m.cfg().Failover.Grace.D())); r > 0 && r < wait {
				wait = r
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-lctx.Done():
		case r, ok := <-reqs:
			if !ok {
				t.Stop()
				return
			}
			pending = append(pending, r)
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// suspectPoll is how often the coordinator reads the primary's observers while its own probes
// of the primary fail.
const suspectPoll = 50 * time.Millisecond

// tick is one look at the cluster by the coordinator. downSince is when the primary was first
// seen dead by every instance (zero if it is not); the new value is returned, and whether the
// coordinator's own probe of the primary fails (look again soon).
func (m *Manager) tick(ctx context.Context, co *topology.Coordinator, downSince time.Time) (time.Time, bool) {
	d := m.tick1(ctx, co, downSince)
	snap := m.live.Load()
	st, ok := m.stateOf(snap)
	if !ok {
		return d, false
	}
	i := snap.Index(st)
	return d, i >= 0 && !snap.Nodes[i].Up
}

// stateOf returns the epoch's primary as the snapshot knows it.
func (m *Manager) stateOf(snap *topology.Snapshot) (string, bool) {
	if snap == nil || snap.Phase != topology.PhaseStable {
		return "", false
	}
	if p := snap.PrimaryNode(); p != nil {
		return p.Name, true
	}
	return m.lastPrimary()
}

// lastPrimary is the primary of the last state tick1 read.
func (m *Manager) lastPrimary() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.primary, m.primary != ""
}

func (m *Manager) tick1(ctx context.Context, co *topology.Coordinator, downSince time.Time) time.Time {
	cl := m.cfg()
	snap := m.live.Load()
	if snap == nil {
		return time.Time{}
	}
	st, ok, err := m.store.State(ctx, cl.Name)
	if err != nil {
		return downSince
	}
	if !ok {
		m.initState(ctx, co, snap)
		return time.Time{}
	}
	m.mu.Lock()
	m.primary = st.Primary
	m.mu.Unlock()
	switch st.Phase {
	case topology.PhaseFailingOver:
		if m.mayRetry() {
			if _, err := m.failover(ctx, co, st, "finishing an interrupted failover", st.Candidate, false); err != nil {
				m.retryLater()
			}
		}
		return time.Time{}
	case topology.PhaseSwitchingOver:
		m.resumeSwitchover(ctx, co, st)
		return time.Time{}
	}
	pi := snap.Index(st.Primary)
	if pi < 0 {
		return time.Time{} // the epoch's primary is not (or no longer) configured: nothing to watch
	}
	p := &snap.Nodes[pi]
	m.upkeep(ctx, cl, snap, st, co)
	if p.Up {
		m.clearRefusal(ctx, co)
		if p.Role == topology.RolePrimary && p.ReplayPos != "" {
			m.mu.Lock()
			m.lastPos[p.Name] = p.ReplayPos
			m.mu.Unlock()
		}
		return time.Time{}
	}
	// The coordinator's own probe fails. Is the primary gone for every instance?
	obs, err := m.store.Observers(ctx, cl.Name, st.Primary)
	if err != nil || len(obs) > 0 {
		return time.Time{}
	}
	now := time.Now()
	if downSince.IsZero() {
		m.log.Warn("primary unreachable from every instance", "cluster", cl.Name, "node", st.Primary, "grace", cl.Failover.Grace.D())
		return now
	}
	if now.Sub(downSince) < cl.Failover.Grace.D() {
		return downSince
	}
	if p, paused, err := m.store.Paused(ctx, cl.Name); err != nil {
		return downSince // cannot tell: no automatic failover
	} else if paused {
		why := ""
		if p.Reason != "" {
			why = ": " + p.Reason
		}
		m.refuse(ctx, co, fmt.Sprintf("primary %s is down; automatic failover is paused (by %s since %s%s): run `baton resume --cluster %s`, or `baton failover --cluster %s`",
			st.Primary, p.By, p.Since.UTC().Format(time.RFC3339), why, cl.Name, cl.Name))
		return downSince
	}
	if !cl.Failover.AutoEnabled() {
		m.refuse(ctx, co, fmt.Sprintf("primary %s is down; automatic failover is off (failover.auto: false): run `baton failover --cluster %s`", st.Primary, cl.Name))
		return downSince
	}
	if last, ok := m.lastChange(ctx, cl.Name); ok && now.Sub(last) < cl.Failover.MinInterval.D() {
		m.refuse(ctx, co, fmt.Sprintf("primary %s is down; no automatic failover until %s (failover.min_interval %v after the previous primary change): run `baton failover --cluster %s`",
			st.Primary, last.Add(cl.Failover.MinInterval.D()).UTC().Format(time.RFC3339), cl.Failover.MinInterval.D(), cl.Name))
		return downSince
	}
	if _, err := m.failover(ctx, co, st, fmt.Sprintf("primary %s unreachable from every instance for %v", st.Primary, now.Sub(downSince).Round(time.Millisecond)), "", false); err != nil {
		m.retryLater()
	}
	return time.Time{}
}

// refuse reports a refused automatic failover once per distinct reason: an error in the log and
// the cluster's alert in etcd, which every instance's status and metrics show.
func (m *Manager) refuse(ctx context.Context, co *topology.Coordinator, why string) {
	m.mu.Lock()
	same := m.refused == why
	m.refused = why
	m.mu.Unlock()
	if same {
		return
	}
	m.log.Error("automatic failover refused", "cluster", co.Cluster(), "reason", why)
	if err := co.SetAlert(ctx, why); err != nil {
		m.log.Warn("cannot publish the alert", "cluster", co.Cluster(), "error", err)
	}
}

// clearRefusal withdraws the alert of an earlier refusal (the primary is back, or replaced).
func (m *Manager) clearRefusal(ctx context.Context, co *topology.Coordinator) {
	m.mu.Lock()
	had := m.refused != ""
	m.refused = ""
	m.mu.Unlock()
	if had {
		m.dropAlert(ctx, co)
	}
}

// dropAlert deletes the cluster's alert key.
func (m *Manager) dropAlert(ctx context.Context, co *topology.Coordinator) {
	if err := co.SetAlert(ctx, ""); err != nil {
		m.log.Warn("cannot clear the alert", "cluster", co.Cluster(), "error", err)
	}
}

// lastChange is when the cluster's primary last changed (by failover, switchover or adoption).
func (m *Manager) lastChange(ctx context.Context, cluster string) (time.Time, bool) {
	h, err := m.store.History(ctx, cluster)
	if err != nil {
		return time.Time{}, false
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Kind != "initial" && h[i].Error == "" {
			return h[i].Started.Add(h[i].Duration), true
		}
	}
	return time.Time{}, false
}

// initState publishes the first state of a cluster: epoch 1, with the node the probes see as
// the only primary.
func (m *Manager) initState(ctx context.Context, co *topology.Coordinator, snap *topology.Snapshot) {
	p := snap.PrimaryNode()
	if p == nil {
		return // wait until exactly one node claims the role
	}
	st := topology.ClusterState{Epoch: 1, Primary: p.Name, Phase: topology.PhaseStable, Since: time.Now().UTC(), Reason: "initial"}
	if err := co.WriteState(ctx, st); err != nil {
		m.log.Warn("cannot publish the initial state", "cluster", snap.Cluster, "error", err)
		return
	}
	co.AppendHistory(ctx, topology.Event{Epoch: 1, Kind: "initial", To: p.Name, Reason: "first primary observed",
		Started: st.Since, By: m.store.Instance()})
	m.log.Info("cluster state published", "cluster", snap.Cluster, "epoch", 1, "primary", p.Name)
}

// upkeep, in a stable phase: fence any other node that takes writes, and unfence the epoch's
// primary if it refuses them (a node fenced by an aborted switchover, or re-elected); check
// old primaries for divergence.
func (m *Manager) upkeep(ctx context.Context, cl *topology.Cluster, snap *topology.Snapshot, st topology.ClusterState, co *topology.Coordinator) {
	m.checkDiverged(ctx, cl, snap, st, co)
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		if !n.Up {
			continue
		}
		node := nodeByName(cl, n.Name)
		if node == nil {
			continue
		}
		stray := n.Name != st.Primary && n.Role == topology.RolePrimary && !n.ReadOnly
		fencedPrimary := n.Name == st.Primary && n.Role == topology.RolePrimary && n.ReadOnly
		if !stray && !fencedPrimary {
			continue
		}
		m.mu.Lock()
		recent := time.Since(m.fenced[n.Name]) < 5*time.Second
		if !recent {
			m.fenced[n.Name] = time.Now()
		}
		m.mu.Unlock()
		if recent {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
		if stray {
			err := m.eng.Fence(sctx, node)
			m.log.Warn("fenced a node that takes writes but is not the epoch's primary", "cluster", cl.Name,
				"node", n.Name, "epoch", st.Epoch, "primary", st.Primary, "error", errString(err))
		} else {
			err := m.eng.Unfence(sctx, node)
			m.log.Info("unfenced the epoch's primary", "cluster", cl.Name, "node", n.Name, "epoch", st.Epoch, "error", errString(err))
		}
		cancel()
	}
}

// fencedNow records that node was fenced just now when err is nil, and returns err. The upkeep
// then leaves it alone for a few seconds: until the probes see the fence, the snapshot still
// shows it taking writes, and fencing it again would be reported as a stray primary.
func (m *Manager) fencedNow(node string, err error) error {
	if err == nil {
		m.mu.Lock()
		m.fenced[node] = time.Now()
		m.mu.Unlock()
	}
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func nodeByName(cl *topology.Cluster, name string) *topology.Node {
	for _, n := range cl.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// run records the steps of one failover or switchover: one log line per step with its duration.
type run struct {
	mu      sync.Mutex  // guards ev (a fence runs beside the other steps)
	pending []*fenceRun // steps running in the background; finish waits for them
	m       *Manager
	cl      *topology.Cluster
	ev      topology.Event
	log     *slog.Logger
}

func (m *Manager) newRun(cl *topology.Cluster, kind, from, reason string, epoch uint64) *run {
	return &run{m: m, cl: cl, log: m.log.With("cluster", cl.Name, "kind", kind, "epoch", epoch),
		ev: topology.Event{Epoch: epoch, Kind: kind, From: from, Reason: reason, Started: time.Now().UTC(), By: m.store.Instance()}}
}

// step runs f, logs it and records it.
func (r *run) step(name string, f func() error) error {
	t := time.Now()
	err := f()
	r.record(name, time.Since(t), err)
	return err
}

// record logs and records a step that took d and ended with err. Safe for concurrent use.
func (r *run) record(name string, d time.Duration, err error) {
	r.mu.Lock()
	r.ev.Steps = append(r.ev.Steps, topology.Step{Name: name, Duration: d, Error: errString(err)})
	r.mu.Unlock()
	var sk *skippedError
	switch {
	case errors.As(err, &sk):
		r.log.Info(r.ev.Kind+" step", "step", name, "duration", d.Round(time.Microsecond), "skipped", sk.why, "cause", sk.err)
	case err != nil:
		r.log.Warn(r.ev.Kind+" step", "step", name, "duration", d.Round(time.Microsecond), "error", err)
	default:
		r.log.Info(r.ev.Kind+" step", "step", name, "duration", d.Round(time.Microsecond))
	}
}

// skippedError is a step that could not run where that is expected, such as the fence of a dead
// primary: step logs it at INFO with why, not as a failure, and records it in the history.
type skippedError struct {
	why string
	err error
}

func (e *skippedError) Error() string { return "skipped: " + e.why + ": " + e.err.Error() }
func (e *skippedError) Unwrap() error { return e.err }

// finish records the run in the history.
func (r *run) finish(ctx context.Context, co *topology.Coordinator, to string, err error) {
	for _, f := range r.pending {
		f.wait() // its step belongs in the record
	}
	r.mu.Lock()
	r.ev.To = to
	r.ev.Duration = time.Since(r.ev.Started)
	r.ev.Error = errString(err)
	ev := r.ev
	r.mu.Unlock()
	if err != nil {
		r.log.Error(ev.Kind+" failed", "from", ev.From, "duration", ev.Duration.Round(time.Millisecond), "error", err)
	} else {
		r.log.Info(ev.Kind+" done", "from", ev.From, "to", to, "duration", ev.Duration.Round(time.Millisecond))
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	co.AppendHistory(hctx, ev)
}

// waitAcks waits until every live instance that serves the cluster has acknowledged epoch, or
// its lease is gone, bounded by twice the lease TTL (an instance cut off etcd stops writing on
// its own after half of it). Instances sharing the etcd that do not serve this cluster never
// write to it and are not waited for.
func (m *Manager) waitAcks(ctx context.Context, cluster string, epoch uint64, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		insts, err := m.store.Members(ctx, cluster)
		if err == nil {
			var acks []string
			acks, err = m.store.Acks(ctx, cluster, epoch)
			if err == nil {
				missing := 0
				for _, i := range insts {
					if !slices.Contains(acks, i) {
						missing++
					}
				}
				if missing == 0 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every instance acknowledged epoch %d within %v (proceeding: the old primary is fenced, and an instance without its etcd lease stops writing)", epoch, bound)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fenceRun is a fence of the old primary running beside a failover's other steps.
type fenceRun struct {
	done chan struct{}
}

// wait returns when the fence has ended (it is bounded by a probe timeout).
func (f *fenceRun) wait() { <-f.done }

// ended reports whether the fence has ended.
func (f *fenceRun) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// startFence fences node old in the background and records the step when it ends.
func (m *Manager) startFence(ctx context.Context, r *run, cl *topology.Cluster, old string) *fenceRun {
	f := &fenceRun{done: make(chan struct{})}
	on := nodeByName(cl, old)
	if on == nil {
		close(f.done)
		return f
	}
	start := time.Now()
	r.pending = append(r.pending, f)
	go func() {
		defer close(f.done)
		// Every instance has failed to reach it for grace: one probe timeout is all the
		// chance it gets (a hung node would otherwise hold the failover up).
		fctx, cancel := context.WithTimeout(ctx, min(cl.Failover.StepTimeout.D(), cl.ProbeTimeout.D()))
		defer cancel()
		err := m.fencedNow(on.Name, m.eng.Fence(fctx, on))
		if isUnreachable(err) {
			// Expected of a dead primary. The upkeep fences it once it answers again and
			// takes writes (a stray primary), before anything is routed to it.
			err = &skippedError{why: "node " + old + " is unreachable; the fence is retried when it returns", err: err}
		}
		r.record("fence", time.Since(start), err)
	}()
	return f
}

// candidate is a node that may become the primary, with what Inspect read of it.
type candidate struct {
	node *topology.Node
	info NodeInfo
	sync bool
}

// inspectAll reads every node except skip, concurrently, bounded by the step timeout. Nodes
// that do not answer are left out.
func (m *Manager) inspectAll(ctx context.Context, cl *topology.Cluster, skip string) []candidate {
	ctx, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
	defer cancel()
	var mu sync.Mutex
	var out []candidate
	var wg sync.WaitGroup
	snap := m.live.Load()
	for _, n := range cl.Nodes {
		if n.Name == skip {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := m.eng.Inspect(ctx, n)
			if err != nil {
				return
			}
			c := candidate{node: n, info: info}
			if snap != nil {
				if i := snap.Index(n.Name); i >= 0 {
					c.sync = snap.Nodes[i].Sync
				}
			}
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// choose picks the failover candidate among replicas (DESIGN §3 step 4): not no_promote; the
// one named by to if set; synchronous standbys first, then the highest received position, then
// priority, then configuration order.
func (m *Manager) choose(cl *topology.Cluster, cands []candidate, to string) (candidate, error) {
	order := map[string]int{}
	for i, n := range cl.Nodes {
		order[n.Name] = i
	}
	var ok []candidate
	for _, c := range cands {
		switch {
		case to != "" && c.node.Name != to:
		case !c.info.InRecovery:
		case c.node.NoPromote && to == "":
		default:
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 {
		if to != "" {
			return candidate{}, fmt.Errorf("node %s is not a reachable replica", to)
		}
		return candidate{}, errors.New("no reachable replica may be promoted")
	}
	slices.SortStableFunc(ok, func(a, b candidate) int {
		if a.sync != b.sync {
			if a.sync {
				return -1
			}
			return 1
		}
		if c, comparable := m.eng.Compare(a.info.Received, b.info.Received); comparable && c != 0 {
			return -c
		}
		if a.node.Priority != b.node.Priority {
			return b.node.Priority - a.node.Priority
		}
		return order[a.node.Name] - order[b.node.Name]
	})
	return ok[0], nil
}

// failover replaces st's primary (DESIGN §3 steps 2–7). resume: st is already failing_over
// (a previous coordinator began it); prefer is the candidate it had chosen, or the operator's
// --to. force skips the max_data_loss check.
func (m *Manager) failover(ctx context.Context, co *topology.Coordinator, st topology.ClusterState, reason, prefer string, force bool) (topology.ClusterState, error) {
	cl := m.cfg()
	old := st.Primary
	if st.Phase != topology.PhaseStable {
		old = st.Old
	}
	epoch := st.Epoch
	if st.Phase == topology.PhaseStable {
		epoch++
	}
	r := m.newRun(cl, "failover", old, reason, epoch)
	r.log.Warn("failover started", "from", old, "reason", reason)
	cur := topology.ClusterState{Epoch: epoch, Phase: topology.PhaseFailingOver, Since: time.Now().UTC(), Reason: reason, Old: old}
	if st.Phase == topology.PhaseFailingOver {
		cur = st
	}
	err := r.step("failing_over", func() error { return co.WriteState(ctx, cur) })
	if err != nil {
		r.finish(ctx, co, "", err)
		return st, err
	}
	ttl := m.store.TTL()
	r.step("acks", func() error { return m.waitAcks(ctx, cl.Name, epoch, 2*ttl) })
	// The fence runs beside the candidate's inspection. When no instance observes the old
	// primary (it is dead, hung or cut off), the promotion does not wait for it: a hung node
	// would hold the failover up for a probe timeout, and every instance has already stopped
	// writing to it (the acks). Otherwise (a forced failover of a live primary) the promotion
	// waits until the fence has ended.
	fence := m.startFence(ctx, r, cl, old)
	obs, oerr := m.store.Observers(ctx, cl.Name, old)
	waitFence := oerr != nil || len(obs) > 0
	// Replicas stop receiving from the old primary before the candidate is chosen: if it
	// resumes now, what it commits reaches none of them (Detacher; MySQL/MariaDB).
	var detached []*topology.Node
	if _, ok := m.eng.(Detacher); ok {
		r.step("detach", func() error {
			detached = m.detachAll(ctx, cl, old)
			return nil
		})
	}
	var cand candidate
	err = r.step("candidate", func() error {
		cands := m.inspectAll(ctx, cl, old)
		for _, c := range cands {
			r.log.Info("failover inspected", "node", c.node.Name, "received", c.info.Received, "applied", c.info.Applied,
				"recovery", c.info.InRecovery, "timeline", c.info.Timeline, "sync", c.sync)
		}
		// A candidate a previous coordinator already promoted is the answer.
		for _, c := range cands {
			if c.node.Name == st.Candidate && st.Candidate != "" && !c.info.InRecovery && c.info.Writable {
				cand = c
				return nil
			}
		}
		var err error
		if cand, err = m.choose(cl, cands, prefer); err != nil {
			return err
		}
		m.mu.Lock()
		last := m.lastPos[old]
		m.mu.Unlock()
		if !force && last != "" {
			lost := m.eng.Distance(last, cand.info.Received)
			limit := int64(cl.Failover.MaxDataLoss)
			if cl.Engine == topology.EngineMySQL {
				limit = int64(cl.Failover.MaxLostTransactions)
			}
			if limit > 0 && lost > limit {
				return fmt.Errorf("best candidate %s is %d behind the old primary's last known position, over the failover bound %d (use --force to accept the loss)", cand.node.Name, lost, limit)
			}
		}
		r.log.Info("failover candidate", "node", cand.node.Name, "received", cand.info.Received, "applied", cand.info.Applied, "sync", cand.sync)
		return nil
	})
	if err != nil {
		// Nothing was promoted. If the old primary answers again it stays the primary (the
		// upkeep unfences it); otherwise writes keep failing until an operator acts.
		back := topology.ClusterState{Epoch: epoch, Primary: old, Phase: topology.PhaseStable, Since: time.Now().UTC(),
			Reason: "failover failed: " + err.Error()}
		m.reattachAll(ctx, cl, detached)
		co.WriteState(ctx, back)
		r.finish(ctx, co, "", err)
		return back, err
	}
	promoted := !cand.info.InRecovery && cand.info.Writable
	if !promoted {
		cur.Candidate = cand.node.Name
		if err := co.WriteState(ctx, cur); err != nil {
			r.finish(ctx, co, "", err)
			return st, err
		}
		r.step("apply", func() error {
			actx, cancel := context.WithTimeout(ctx, cl.Failover.ApplyTimeout.D())
			defer cancel()
			return m.eng.WaitApplied(actx, cand.node, "")
		})
		if waitFence {
			fence.wait()
		} else if !fence.ended() {
			r.log.Info("promoting while the fence of the unobserved old primary is still trying", "node", old)
		}
		err = r.step("promote", func() error {
			pctx, cancel := context.WithTimeout(ctx, max(cl.Failover.StepTimeout.D(), time.Minute))
			defer cancel()
			return m.eng.Promote(pctx, cand.node)
		})
		if err != nil {
			r.finish(ctx, co, "", err)
			return cur, err // stays failing_over: the next tick retries
		}
	}
	next := topology.ClusterState{Epoch: epoch, Primary: cand.node.Name, Phase: topology.PhaseStable, Since: time.Now().UTC(), Reason: reason}
	// Publish before re-pointing: writes resume on the new primary at once, and replicas that
	// are not yet re-pointed merely serve no reads for a moment.
	if err := r.step("stable", func() error { return co.WriteState(ctx, next) }); err != nil {
		r.finish(ctx, co, cand.node.Name, err)
		return cur, err
	}
	r.step("repoint", func() error { return m.repointAll(ctx, cl, cand.node, old) })
	r.finish(ctx, co, cand.node.Name, nil)
	m.clearRefusal(ctx, co)
	m.mu.Lock()
	m.backoff, m.retryAt = 0, time.Time{}
	m.mu.Unlock()
	return next, nil
}

// repointAll makes every reachable replica other than skip follow primary, concurrently.
func (m *Manager) repointAll(ctx context.Context, cl *topology.Cluster, primary *topology.Node, skip string) error {
	ctx, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	// Nodes that do not answer are re-pointed when an operator brings them back; a fenced old
	// primary (not in recovery) is not re-pointed here.
	for _, c := range m.inspectAll(ctx, cl, skip) {
		if c.node.Name == primary.Name || !c.info.InRecovery {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.eng.Repoint(ctx, c.node, primary); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// switchover hands the primary role to another node with no loss (DESIGN §3, planned
// switchover). to may be "" (the best replica).
func (m *Manager) switchover(ctx context.Context, co *topology.Coordinator, st topology.ClusterState, to string) (topology.ClusterState, error) {
	cl := m.cfg()
	old := st.Primary
	oldNode := nodeByName(cl, old)
	if st.Phase != topology.PhaseStable {
		return st, fmt.Errorf("cluster %s is %s", cl.Name, st.Phase)
	}
	if oldNode == nil {
		return st, fmt.Errorf("the primary %s is not configured", old)
	}
	epoch := st.Epoch + 1
	r := m.newRun(cl, "switchover", old, "requested", epoch)
	var cand candidate
	err := r.step("candidate", func() error {
		var err error
		cand, err = m.choose(cl, m.inspectAll(ctx, cl, old), to)
		return err
	})
	if err != nil {
		r.finish(ctx, co, "", err)
		return st, err
	}
	// The other replicas follow the candidate before any write is held (cascading replication:
	// PostgreSQL standbys and MariaDB replicas with log_slave_updates can serve others). Once it
	// is promoted they are its replicas at once, the synchronous ones included, so the first
	// commits on the new primary do not wait out a re-pointing inside the write pause (PostgreSQL:
	// 170 ms of a 390 ms pause). A replica that cannot is re-pointed after the promotion as before.
	r.step("follow_candidate", func() error { return m.repointAll(ctx, cl, cand.node, old) })
	cur := topology.ClusterState{Epoch: epoch, Primary: old, Phase: topology.PhaseSwitchingOver, Since: time.Now().UTC(),
		Reason: "switchover to " + cand.node.Name, Old: old, Candidate: cand.node.Name}
	if err := r.step("switching_over", func() error { return co.WriteState(ctx, cur) }); err != nil {
		r.finish(ctx, co, "", err)
		return st, err
	}
	r.step("drain", func() error {
		return m.waitAcks(ctx, cl.Name, epoch, cl.Failover.DrainTimeout.D()+m.store.TTL())
	})
	abort := func(cause error) (topology.ClusterState, error) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cl.Failover.StepTimeout.D())
		defer cancel()
		uerr := m.eng.Unfence(actx, oldNode)
		back := topology.ClusterState{Epoch: epoch, Primary: old, Phase: topology.PhaseStable, Since: time.Now().UTC(),
			Reason: "switchover aborted: " + cause.Error()}
		if err := co.WriteState(actx, back); err != nil {
			cause = errors.Join(cause, err)
		}
		if uerr != nil {
			cause = errors.Join(cause, uerr)
		}
		r.finish(ctx, co, "", cause)
		return back, cause
	}
	sctx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
	}
	if err := r.step("fence", func() error {
		c, cancel := sctx()
		defer cancel()
		return m.fencedNow(oldNode.Name, m.eng.Fence(c, oldNode))
	}); err != nil {
		return abort(err)
	}
	var pos string
	if err := r.step("position", func() error {
		c, cancel := sctx()
		defer cancel()
		info, err := m.eng.Inspect(c, oldNode)
		pos = info.Applied
		return err
	}); err != nil {
		return abort(err)
	}
	if err := r.step("catch_up", func() error {
		c, cancel := context.WithTimeout(ctx, cl.Failover.ApplyTimeout.D())
		defer cancel()
		return m.eng.WaitApplied(c, cand.node, pos)
	}); err != nil {
		return abort(err)
	}
	if err := r.step("promote", func() error {
		c, cancel := context.WithTimeout(ctx, max(cl.Failover.StepTimeout.D(), time.Minute))
		defer cancel()
		return m.eng.Promote(c, cand.node)
	}); err != nil {
		return abort(err)
	}
	next := topology.ClusterState{Epoch: epoch, Primary: cand.node.Name, Phase: topology.PhaseStable, Since: time.Now().UTC(),
		Reason: "switchover from " + old}
	if err := r.step("stable", func() error { return co.WriteState(ctx, next) }); err != nil {
		r.finish(ctx, co, cand.node.Name, err)
		return cur, err
	}
	r.step("repoint", func() error { return m.repointAll(ctx, cl, cand.node, old) })
	r.step("rejoin_old", func() error {
		c, cancel := sctx()
		defer cancel()
		err := m.eng.Rejoin(c, oldNode, cand.node)
		if errors.Is(err, ErrUnsupported) {
			return nil // PostgreSQL: the old primary stays fenced until pg_rewind (README)
		}
		return err
	})
	r.finish(ctx, co, cand.node.Name, nil)
	return next, nil
}

// resumeSwitchover finishes or rolls back a switchover whose coordinator went away.
func (m *Manager) resumeSwitchover(ctx context.Context, co *topology.Coordinator, st topology.ClusterState) {
	cl := m.cfg()
	if cn := nodeByName(cl, st.Candidate); cn != nil {
		c, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
		info, err := m.eng.Inspect(c, cn)
		cancel()
		if err == nil && !info.InRecovery && info.Writable {
			next := topology.ClusterState{Epoch: st.Epoch, Primary: cn.Name, Phase: topology.PhaseStable, Since: time.Now().UTC(),
				Reason: "switchover from " + st.Old + " (finished by " + m.store.Instance() + ")"}
			if co.WriteState(ctx, next) == nil {
				m.repointAll(ctx, cl, cn, st.Old)
				m.log.Info("switchover finished by a new coordinator", "cluster", cl.Name, "primary", cn.Name, "epoch", st.Epoch)
			}
			return
		}
	}
	// The candidate was not promoted: give the role back to the old primary if it answers,
	// else fail over.
	if on := nodeByName(cl, st.Old); on != nil {
		c, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
		err := m.eng.Unfence(c, on)
		cancel()
		if err == nil {
			co.WriteState(ctx, topology.ClusterState{Epoch: st.Epoch, Primary: st.Old, Phase: topology.PhaseStable,
				Since: time.Now().UTC(), Reason: "switchover rolled back by a new coordinator"})
			m.log.Warn("switchover rolled back by a new coordinator", "cluster", cl.Name, "primary", st.Old)
			return
		}
	}
	st.Phase = topology.PhaseFailingOver
	m.failover(ctx, co, st, "switchover interrupted and the old primary does not answer", "", false)
}

// handle answers an operator's request.
func (m *Manager) handle(ctx context.Context, co *topology.Coordinator, req topology.Request) {
	cl := m.cfg()
	res := topology.Result{}
	st, ok, err := m.store.State(ctx, cl.Name)
	switch {
	case err != nil:
	case !ok:
		err = errors.New("the cluster has no published state yet (no primary observed)")
	case req.To != "" && nodeByName(cl, req.To) == nil:
		err = fmt.Errorf("no node %q in cluster %s", req.To, cl.Name)
	default:
		switch req.Kind {
		case "switchover":
			m.log.Info("switchover requested", "cluster", cl.Name, "to", req.To, "by", req.From)
			st, err = m.switchover(ctx, co, st, req.To)
		case "failover":
			m.log.Warn("manual failover requested", "cluster", cl.Name, "to", req.To, "force", req.Force, "by", req.From)
			snap := m.live.Load()
			if i := snap.Index(st.Primary); !req.Force && st.Phase == topology.PhaseStable && i >= 0 && snap.Nodes[i].Up {
				err = fmt.Errorf("the primary %s is healthy; use switchover, or --force to fail over anyway", st.Primary)
				break
			}
			st, err = m.failover(ctx, co, st, "manual failover requested by "+req.From, req.To, req.Force)
		case "rejoin":
			err = m.rejoin(ctx, cl, st, req.Node)
		default:
			err = fmt.Errorf("unknown request %q", req.Kind)
		}
	}
	if err != nil {
		res.Error = err.Error()
	} else {
		res.OK = true
	}
	res.Epoch, res.Primary = st.Epoch, st.Primary
	if h, herr := m.store.History(ctx, cl.Name); herr == nil && len(h) > 0 && (req.Kind == "failover" || req.Kind == "switchover") {
		res.Event = &h[len(h)-1]
	}
	if err := co.Answer(ctx, req.ID, res); err != nil {
		m.log.Warn("cannot answer request", "cluster", cl.Name, "request", req.ID, "error", err)
	}
}

// rejoin attaches a fenced old primary to the current primary as a replica (MySQL/MariaDB).
func (m *Manager) rejoin(ctx context.Context, cl *topology.Cluster, st topology.ClusterState, name string) error {
	n := nodeByName(cl, name)
	switch {
	case n == nil:
		return fmt.Errorf("no node %q in cluster %s", name, cl.Name)
	case name == st.Primary:
		return fmt.Errorf("node %s is the primary", name)
	case st.Phase != topology.PhaseStable:
		return fmt.Errorf("cluster %s is %s", cl.Name, st.Phase)
	}
	p := nodeByName(cl, st.Primary)
	if p == nil {
		return fmt.Errorf("the primary %s is not configured", st.Primary)
	}
	c, cancel := context.WithTimeout(ctx, cl.Failover.StepTimeout.D())
	defer cancel()
	if dv, ok := m.eng.(Diverger); ok {
		d, err := dv.Diverged(c, n, p)
		if err != nil {
			return fmt.Errorf("node %s: cannot tell whether it diverged from %s, so it is not re-attached: %w", name, p.Name, err)
		}
		if d != nil {
			return fmt.Errorf("node %s is diverged, needs rewind: %s. It is not re-attached.\n%s", name, d.Detail, d.Steps)
		}
	}
	err := m.eng.Rejoin(c, n, p)
	if errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("node %s: PostgreSQL cannot re-attach an old primary online; rewind it with pg_rewind and start it as a standby (README, \"Re-attaching an old primary\")", name)
	}
	if err == nil {
		m.log.Info("node rejoined as a replica", "cluster", cl.Name, "node", name, "primary", st.Primary)
	}
	return err
}
