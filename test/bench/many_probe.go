package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// batonWaits is a snapshot of baton_pool_wait_seconds, per node: cumulative bucket counts by
// upper bound (+Inf included), and the sum.
type batonWaits map[string]*waitSeries

type waitSeries struct {
	buckets map[float64]float64
	sum     float64
}

// batonProbe reads baton's queue wait from its admin endpoint's Prometheus histogram
// baton_pool_wait_seconds{node}: the waits of the active phase are the difference of two
// scrapes, and p99 is the upper bound of the bucket that holds it.
type batonProbe struct {
	adminPort int
	before    batonWaits
}

func (p *batonProbe) scrape(ctx context.Context) (batonWaits, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", p.adminPort), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseWaits(resp.Body)
}

// parseWaits reads the baton_pool_wait_seconds series of a Prometheus text exposition.
func parseWaits(r io.Reader) (batonWaits, error) {
	out := batonWaits{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !strings.HasPrefix(name, "baton_pool_wait_seconds_") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		node, le := labelValue(labels, "node"), labelValue(labels, "le")
		s := out[node]
		if s == nil {
			s = &waitSeries{buckets: map[float64]float64{}}
			out[node] = s
		}
		switch name {
		case "baton_pool_wait_seconds_bucket":
			ub, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
			if err == nil {
				s.buckets[ub] = v
			}
		case "baton_pool_wait_seconds_sum":
			s.sum = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no baton_pool_wait_seconds series in /metrics")
	}
	return out, nil
}

// labelValue returns the value of label name in `a="x",b="y"`.
func labelValue(labels, name string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func (p *batonProbe) start(ctx context.Context) error {
	var err error
	p.before, err = p.scrape(ctx)
	return err
}

func (p *batonProbe) stop(ctx context.Context) (string, string, error) {
	after, err := p.scrape(ctx)
	if err != nil {
		return "", "", err
	}
	total := &waitSeries{buckets: map[float64]float64{}}
	var nodes []string
	for node := range after {
		nodes = append(nodes, node)
	}
	slices.Sort(nodes)
	var detail []string
	for _, node := range nodes {
		d := after[node].minus(p.before[node])
		for ub, c := range d.buckets {
			total.buckets[ub] += c
		}
		total.sum += d.sum
		if n := d.count(); n > 0 {
			detail = append(detail, fmt.Sprintf("%s: %.0f acquisitions, mean %s, p99 %s", node, n, fmtSecs(d.sum/n), d.p99()))
		}
	}
	n := total.count()
	if n == 0 {
		return "no acquisitions", "", nil
	}
	cell := fmt.Sprintf("p99 %s, mean %s", total.p99(), fmtSecs(total.sum/n))
	return cell, "baton_pool_wait_seconds (all nodes; p99 = the bucket bound it falls under): " + strings.Join(detail, "; "), nil
}

func (s *waitSeries) minus(o *waitSeries) *waitSeries {
	d := &waitSeries{buckets: map[float64]float64{}, sum: s.sum}
	for ub, c := range s.buckets {
		d.buckets[ub] = c
		if o != nil {
			d.buckets[ub] -= o.buckets[ub]
		}
	}
	if o != nil {
		d.sum -= o.sum
	}
	return d
}

func (s *waitSeries) count() float64 { return s.buckets[math.Inf(1)] }

// p99 names the smallest bucket bound that holds 99 % of the waits.
func (s *waitSeries) p99() string {
	n := s.count()
	var ubs []float64
	for ub := range s.buckets {
		ubs = append(ubs, ub)
	}
	slices.Sort(ubs)
	for i, ub := range ubs {
		if s.buckets[ub] >= 0.99*n {
			if math.IsInf(ub, 1) {
				if i > 0 {
					return "> " + fmtSecs(ubs[i-1])
				}
				return "?"
			}
			return "≤ " + fmtSecs(ub)
		}
	}
	return "?"
}

func fmtSecs(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case s >= 0.001:
		return fmt.Sprintf("%.1f ms", s*1000)
	default:
		return fmt.Sprintf("%.0f µs", s*1e6)
	}
}

// pgbouncerProbe reads PgBouncer's admin console (stats_users = app): PgBouncer keeps no wait
// histogram, so the cell shows the mean wait per transaction (SHOW STATS: the change of
// total_wait_time over the change of total_xact_count) and the longest wait seen in SHOW POOLS
// maxwait, sampled every 250 ms while the clients run (the oldest client in the queue then).
type pgbouncerProbe struct {
	port int

	conn         *pgconn.PgConn
	wait0, xact0 float64
	stopSampling chan struct{}
	sampled      sync.WaitGroup
	maxWaitUS    atomicMax
	maxQueued    atomicMax
	sampleErr    error
}

func (p *pgbouncerProbe) query(ctx context.Context, sql string) ([]map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := p.conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	for _, r := range res {
		for _, row := range r.Rows {
			m := map[string]string{}
			for i, fd := range r.FieldDescriptions {
				m[fd.Name] = string(row[i])
			}
			rows = append(rows, m)
		}
	}
	return rows, nil
}

// stats returns total_wait_time (µs) and total_xact_count of database app.
func (p *pgbouncerProbe) stats(ctx context.Context) (wait, xact float64, err error) {
	rows, err := p.query(ctx, "SHOW STATS")
	if err != nil {
		return 0, 0, err
	}
	for _, r := range rows {
		if r["database"] != "app" {
			continue
		}
		w, err1 := strconv.ParseFloat(r["total_wait_time"], 64)
		x, err2 := strconv.ParseFloat(r["total_xact_count"], 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("SHOW STATS has no total_wait_time/total_xact_count: %v", r)
		}
		return w, x, nil
	}
	return 0, 0, fmt.Errorf("SHOW STATS has no row for database app")
}

func (p *pgbouncerProbe) start(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgconn.Connect(cctx, strings.Replace(appConnString(p.port), "dbname=app", "dbname=pgbouncer", 1))
	if err != nil {
		return fmt.Errorf("PgBouncer admin console: %w", err)
	}
	p.conn = c
	if p.wait0, p.xact0, err = p.stats(ctx); err != nil {
		return err
	}
	p.stopSampling = make(chan struct{})
	p.sampled.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stopSampling:
				return
			case <-t.C:
			}
			rows, err := p.query(ctx, "SHOW POOLS")
			if err != nil {
				p.sampleErr = err
				return
			}
			for _, r := range rows {
				if r["database"] != "app" {
					continue
				}
				s, _ := strconv.ParseInt(r["maxwait"], 10, 64)
				us, _ := strconv.ParseInt(r["maxwait_us"], 10, 64)
				p.maxWaitUS.store(s*1e6 + us)
				q, _ := strconv.ParseInt(r["cl_waiting"], 10, 64)
				p.maxQueued.store(q)
			}
		}
	})
	return nil
}

func (p *pgbouncerProbe) stop(ctx context.Context) (string, string, error) {
	close(p.stopSampling)
	p.sampled.Wait()
	defer p.conn.Close(context.Background())
	wait, xact, err := p.stats(ctx)
	if err != nil {
		return "", "", err
	}
	if p.sampleErr != nil {
		return "", "", fmt.Errorf("SHOW POOLS: %w", p.sampleErr)
	}
	dx := xact - p.xact0
	if dx <= 0 {
		return "no transactions", "", nil
	}
	mean := (wait - p.wait0) / dx / 1e6
	maxw := float64(p.maxWaitUS.v.Load()) / 1e6
	cell := fmt.Sprintf("no p99; mean %s, max ≥ %s", fmtSecs(mean), fmtSecs(maxw))
	detail := fmt.Sprintf("PgBouncer keeps no wait histogram: mean = SHOW STATS Δtotal_wait_time / Δtotal_xact_count "+
		"(%.0f transactions); max = largest SHOW POOLS maxwait sampled every 250 ms; most clients queued at a sample: %d",
		dx, p.maxQueued.v.Load())
	return cell, detail, nil
}
