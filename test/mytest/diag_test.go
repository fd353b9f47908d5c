package mytest

import (
	"testing"
)

// TestDiagnosticsFollowPreviousStatement (issue 9, item 4): SHOW WARNINGS / ERRORS,
// @@warning_count / @@error_count, FOUND_ROWS(), ROW_COUNT() and GET DIAGNOSTICS after a
// statement that ran on a replica answer from that replica, as a direct connection answers.
func TestDiagnosticsFollowPreviousStatement(t *testing.T) {
	// The reads of this session run on replicas (a fresh session is not pinned).
	wantReplica(t, "a fresh session's read", where(t, conn(t, ""), ctxT(t), ""))
	compareSessions(t, baton, []string{
		"SELECT CAST('abc' AS INT) AS v",
		"SHOW WARNINGS",
		"SHOW COUNT(*) WARNINGS",
		"SELECT @@warning_count, @@error_count",
		"SELECT 1 UNION SELECT 2",
		"SELECT FOUND_ROWS()",
		"SELECT ROW_COUNT()",
		"!SELECT 1 FROM DUAL WHERE no_such_column = 1",
		"SHOW ERRORS",
		"SELECT @@error_count",
		"SELECT CAST('x' AS INT) AS v, CAST('y' AS INT) AS w",
		"GET DIAGNOSTICS @n = NUMBER",
		"GET DIAGNOSTICS CONDITION 2 @m = MESSAGE_TEXT, @e = MYSQL_ERRNO",
		"SELECT @n, @m, @e",
	})
}
