package clients

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
)

// out collects the canonical output of an in-process (Go) client program: one line per row,
// command result or error.
type out struct{ b strings.Builder }

func (o *out) String() string { return o.b.String() }

func (o *out) linef(format string, args ...any) {
	fmt.Fprintf(&o.b, format, args...)
	o.b.WriteByte('\n')
}

// err prints an error: PostgreSQL errors as severity, SQLSTATE and message; MySQL errors as
// number, SQLSTATE and message; anything else as its text.
func (o *out) err(what string, err error) {
	if err == nil {
		o.linef("%s: ok", what)
		return
	}
	var pe *pgconn.PgError
	var qe *pq.Error
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &pe):
		o.linef("%s: error %s %s %s", what, pe.Severity, pe.Code, pe.Message)
	case errors.As(err, &qe):
		o.linef("%s: error %s %s %s", what, qe.Severity, qe.Code, qe.Message)
	case errors.As(err, &me):
		o.linef("%s: error %d %s %s", what, me.Number, string(me.SQLState[:]), me.Message)
	default:
		o.linef("%s: error %v", what, err)
	}
}

// row prints one row's values.
func (o *out) row(vals []any) {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = fmtValue(v)
	}
	o.linef("row: %s", strings.Join(s, "|"))
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("0x%x", x)
	case *[]byte:
		if x == nil || *x == nil {
			return "NULL"
		}
		return fmt.Sprintf("0x%x", *x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case string:
		return fmt.Sprintf("%q", x)
	default:
		return fmt.Sprintf("%T:%v", v, v)
	}
}
