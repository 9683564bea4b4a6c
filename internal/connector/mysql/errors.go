package mysql

import (
	"errors"
	"strconv"

	"github.com/go-sql-driver/mysql"
)

// ErrorCode is the server's error number. The server's message text, which may quote a value,
// stays out of it.
func (Dialect) ErrorCode(err error) string {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return "MySQL " + strconv.Itoa(int(myErr.Number))
	}
	return ""
}
