package pgproxy

import (
	"context"
	"log/slog"
	"time"

	"github.com/baton-proxy/baton/health"
	"github.com/baton-proxy/baton/router"
	"github.com/baton-proxy/baton/topology"
)

// CatalogSetter receives a freshly loaded function catalog.
type CatalogSetter interface {
	SetCatalog(router.Catalog)
}

// KeepCatalog loads function volatility from pg_proc on the primary, and again whenever the
// primary changes, a new connection is needed, or every 10 minutes (new functions). Until the
// first load the classifier uses its built-in knowledge only and sends unknown functions to the
// primary.
//
// ddl receives a value after a client's DDL statement succeeded (a new function may exist).
func KeepCatalog(ctx context.Context, cl *topology.Cluster, live *topology.Live, changed func() <-chan struct{}, ddl <-chan struct{}, c CatalogSetter, log *slog.Logger) {
	var loadedFrom string
	var loadedAt time.Time
	var last *router.PGCatalog
	stale := false
	for {
		ch := changed()
		if p := live.Load().PrimaryNode(); p != nil && (stale || p.Name != loadedFrom || time.Since(loadedAt) > 10*time.Minute) {
			cat, n, err := loadCatalog(ctx, cl, p)
			if err != nil {
				if ctx.Err() != nil {
					return // shutting down: an interrupted load is no problem
				}
				log.Warn("loading function catalog", "cluster", cl.Name, "node", p.Name, "error", err)
			} else {
				if last == nil || !last.Equal(cat) {
					c.SetCatalog(cat) // clears the classification cache: only when it changed
					last = cat
				}
				loadedFrom, loadedAt, stale = p.Name, time.Now(), false
				log.Debug("function catalog loaded", "cluster", cl.Name, "node", p.Name, "functions", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-ddl:
			stale = true
		}
	}
}

func loadCatalog(ctx context.Context, cl *topology.Cluster, n *topology.NodeState) (*router.PGCatalog, int, error) {
	nt, err := cl.NodeTLS(n.Name, n.Address)
	if err != nil {
		return nil, 0, err
	}
	u := cl.MonitorCredentials()
	db := cl.Database
	if db == "" {
		db = u.BackendUser
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := health.ConnectPG(ctx, n.Address, u.BackendUser, u.BackendPassword.Reveal(), db, "baton-catalog", health.PGWithTLS(nt))
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close(context.Background())
	res := conn.ExecParams(ctx, router.PGCatalogQuery, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, 0, res.Err
	}
	cat := router.NewPGCatalog()
	for _, r := range res.Rows {
		if len(r) >= 3 && len(r[2]) == 1 {
			cat.Add(string(r[0]), string(r[1]), r[2][0])
		}
	}
	return cat, len(res.Rows), nil
}
