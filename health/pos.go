package health

// Exported forms of the position helpers in lag.go, for package failover, which compares the
// positions of candidate nodes with the same rules the lag measurement uses.

// ParseLSN parses PostgreSQL pg_lsn text "X/Y" (two hexadecimal 32-bit halves) into a byte
// position.
func ParseLSN(s string) (int64, error) { return parseLSN(s) }

// LSNDistance returns a − b in bytes when both are pg_lsn text; ok is false otherwise.
func LSNDistance(a, b string) (d int64, ok bool) { return lsnDistance(a, b) }

// ParseMariaGTIDs parses a MariaDB GTID position list ("0-1-42,1-2-7") into the highest
// sequence number per replication domain. "" is the empty list.
func ParseMariaGTIDs(s string) (map[uint32]uint64, error) { return parseMariaGTIDs(s) }

// SameEndpoint reports whether two host:port strings name the same server: equal ports and
// equal hosts (ignoring case), or both hosts loopback. No name is resolved.
func SameEndpoint(a, b string) bool { return sameEndpoint(a, b) }
