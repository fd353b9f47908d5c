// Package admin is baton's operator surface: an HTTP server, loopback-only by default, with
//
//	GET /metrics                  Prometheus text format (a private registry; nothing global)
//	GET /healthz                  200 "ok" while the process serves; never needs the token
//	GET /readyz                   200 when every cluster has a primary, else 503 with a JSON reason
//	GET /api/v1/clusters          every cluster: nodes, roles, health, counters (ClustersResponse)
//	GET /api/v1/clusters/{name}   one cluster (ClusterStatus), 404 when unknown
//
// Every value is read from the running instance when it is requested: the metrics come from a
// prometheus.Collector that reads the servers' counters and the clusters' topology snapshots at
// scrape time, and the JSON API reads the same values through the same function, so the two
// always agree.
//
// When a token is configured, every endpoint but /healthz requires "Authorization: Bearer
// TOKEN"; the comparison takes constant time. A missing or wrong token gets 401.
//
// Usage (only cmd/ reads configuration files):
//
//	inst, _ := proxy.Start(ctx, cfg, log)
//	adm := admin.New(inst, cfg.Admin, log)
//	if err := adm.Start(); err != nil { … }
//	log.Info("admin", "url", adm.URL())
//	…
//	adm.MarkDraining()            // /readyz turns 503 while the proxy drains
//	inst.Shutdown(timeout)
//	adm.Shutdown(ctx)
//
// WriteTable renders a ClustersResponse as the table `baton status` prints.
package admin
