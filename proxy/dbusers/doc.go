// Package dbusers caches what the database says about client users (the auth_query lookups of
// both engines): one answer per user name, found or not found, for a TTL, with concurrent
// lookups of the same name coalesced and the number of cached names bounded.
//
// The cache holds secrets (verifiers, password hashes): it never logs, and T should not print
// them either.
package dbusers
