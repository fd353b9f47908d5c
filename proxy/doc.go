// Package proxy wires baton's parts into a running instance: for every configured cluster a
// health checker, a statement classifier with its function catalog, and the engine's server
// (proxy/pgproxy for PostgreSQL).
//
//	inst, err := proxy.Start(ctx, cfg, logger)
//	…
//	inst.Shutdown(30 * time.Second) // drain: running transactions may finish
//
// The wire protocols live in subpackages: proxy/pgwire (PostgreSQL codec and authentication,
// importing nothing from baton) and proxy/pgproxy (sessions, pools, routing).
package proxy
