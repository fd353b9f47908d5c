package pgtest

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

func asPgError(err error, pe **pgconn.PgError) bool { return err != nil && errors.As(err, pe) }
