// Package admit holds the per-user and per-database connection counts behind baton's
// max_client_connections limits, and the failed-login backoff per client address. Both are
// bounded: counts exist only for names with live sessions, and the backoff keeps a fixed table
// whatever the number of addresses.
package admit
