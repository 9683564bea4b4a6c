package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrorCode is the SQLSTATE of a server error. The server's message text, which may quote a
// value, stays out of it.
func (Dialect) ErrorCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && validSQLState(pgErr.Code) {
		return "SQLSTATE " + pgErr.Code
	}
	return ""
}

// validSQLState: five digits or upper-case letters, as the standard defines them.
func validSQLState(code string) bool {
	if len(code) != 5 {
		return false
	}
	for _, r := range code {
		if (r < '0' || r > '9') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}
