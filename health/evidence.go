package health

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Evidence is what a failed probe (or a client statement's failed connection) says about a
// node. It decides how soon an instance withdraws its observation of the node (DESIGN §3).
type Evidence int

const (
	// Timeout: the node did not answer in time — a hung host, dropped packets, or merely a busy
	// server. Weak evidence: the observation goes after failure_threshold consecutive failures.
	Timeout Evidence = iota
	// Unclear: an error that is neither a timeout nor certainly the node going away (a
	// driver's "invalid connection", an unexpected answer). It is worth a confirmation.
	Unclear
	// Gone: the node's host answered that nothing listens or that the connection is over — a
	// refused connect, a reset, an EOF, the server shutting down or starting up. Strong
	// evidence: confirmed by confirm_probes fresh probes, the observation goes at once.
	Gone
)

// String names the evidence for logs.
func (e Evidence) String() string {
	switch e {
	case Gone:
		return "gone"
	case Unclear:
		return "unclear"
	default:
		return "timeout"
	}
}

// Classify says what err, from a probe or a connection to a node, is evidence of.
func Classify(err error) Evidence {
	var pe *pgconn.PgError
	var me *mysql.MySQLError
	var ne net.Error
	switch {
	case err == nil:
		return Unclear
	case errors.As(err, &pe):
		switch pe.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return Gone
		}
		return Unclear
	case errors.As(err, &me):
		if me.Number == 1053 { // ER_SERVER_SHUTDOWN
			return Gone
		}
		return Unclear
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Gone
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Unclear
}
