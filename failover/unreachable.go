package failover

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"

	"github.com/baton-proxy/baton/topology"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// unreachableError is a step's error when the administrative connection never reached the
// server: the dial was refused, timed out or was cut before the server answered. A failover
// expects it from the dead primary's fence, and logs it as what it is rather than as a failure.
// The message and the wrapped chain are the step error's own.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// connectError is stepError for a failed connection to n. One that never reached the server is
// an *unreachableError; one the server refused (authentication, too many connections, starting
// up) is an ordinary step error: that is a problem to report.
func connectError(n *topology.Node, step string, err error) error {
	serr := stepError(n, step+": connect", err)
	if noAnswer(err) {
		return &unreachableError{serr}
	}
	return serr
}

// noAnswer reports whether err says the server did not answer at all.
func noAnswer(err error) bool {
	var pe *pgconn.PgError
	var me *mysql.MySQLError
	if errors.As(err, &pe) || errors.As(err, &me) {
		return false // the server answered, with an error
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn)
}

// isUnreachable reports whether err (from an Engine step) means the node did not answer.
func isUnreachable(err error) bool {
	var ue *unreachableError
	return errors.As(err, &ue)
}
