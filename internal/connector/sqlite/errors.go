package sqlite

import (
	"errors"
	"strconv"

	"modernc.org/sqlite"
)

// ErrorCode is the SQLite extended result code. The message text, which may quote a value,
// stays out of it.
func (Dialect) ErrorCode(err error) string {
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		return "SQLite " + strconv.Itoa(sqlErr.Code())
	}
	return ""
}
