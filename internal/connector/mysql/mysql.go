// Package mysql is the MySQL / MariaDB connector. Blank-import it to register it:
//
//	import _ "github.com/dsr-operator/dsr-operator/internal/connector/mysql"
//
// The secret is a go-sql-driver/mysql DSN. The connector forces server-side prepared statements
// (interpolateParams=false), single statements and a utf8mb4 connection, on which its exact
// comparisons rely; each connection keeps its prepared statements for the next request
// (stmtcache.go). It accepts only the DSN parameters of AllowedParams and never answers a
// server's LOAD DATA LOCAL INFILE request with a file (allowAllFiles is refused and forced off).
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

func init() {
	connector.Register(privacyv1alpha1.StoreTypeMySQL, NewProvider(sqlstore.Options{}))
}

// NewProvider returns a MySQL provider with opts.
func NewProvider(opts sqlstore.Options) *sqlstore.Provider {
	return sqlstore.NewProvider(Dialect{}, opts)
}

// Dialect is MySQL's and MariaDB's sqlstore.Dialect.
type Dialect struct{}

var _ sqlstore.Dialect = Dialect{}

// Type is mysql.
func (Dialect) Type() privacyv1alpha1.StoreType { return privacyv1alpha1.StoreTypeMySQL }

// Open parses the DSN (see parseDSN) and opens a pool whose connections go through dial.
func (Dialect) Open(secret []byte, dial connector.DialFunc) (*sql.DB, error) {
	cfg, err := parseDSN(strings.TrimSpace(string(secret)))
	if err != nil {
		return nil, err
	}
	// Per pool, not mysql.RegisterDialContext: that is global and keyed by network name.
	cfg.DialFunc = dial
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, connector.Errorf(connector.KindInvalid, "connect", "the mysql DSN cannot be used")
	}
	return sql.OpenDB(reusingPrepared{conn}), nil
}

// QuoteIdent back-quotes name.
func (Dialect) QuoteIdent(name string) string { return sqlstore.QuoteWith("`", name) }

// Placeholder is ?.
func (Dialect) Placeholder(int) string { return "?" }

// FoldColumnNames is true: MySQL column names are case-insensitive.
func (Dialect) FoldColumnNames() bool { return true }

// schemaArg is the table's schema, or NULL for the DSN's database.
func schemaArg(table sqlstore.TableName) any {
	if table.Schema == "" {
		return nil
	}
	return table.Schema
}

var textTypes = map[string]bool{
	"char": true, "varchar": true, "tinytext": true, "text": true, "mediumtext": true, "longtext": true,
}

// Columns reads information_schema.COLUMNS.
func (Dialect) Columns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]sqlstore.Column, error) {
	rows, err := q.QueryContext(ctx, `
SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, COALESCE(CHARACTER_MAXIMUM_LENGTH, 0),
       COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, '')
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION`, schemaArg(table), table.Table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []sqlstore.Column
	for rows.Next() {
		var c sqlstore.Column
		var columnType, nullable string
		var maxLen int64
		if err := rows.Scan(&c.Name, &c.Type, &columnType, &nullable, &maxLen, &c.Charset, &c.Collation); err != nil {
			return nil, err
		}
		if isInteger(c.Type) && strings.Contains(columnType, "unsigned") {
			c.Type += " unsigned"
		}
		c.Nullable = nullable == "YES"
		c.Text = textTypes[c.Type]
		if c.Text {
			c.MaxLen = int(min(maxLen, 1<<31-1))
		}
		c.Searchable = c.Text || c.Type == "json" || c.Type == "enum" || c.Type == "set"
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func isInteger(dataType string) bool {
	switch strings.TrimSuffix(dataType, " unsigned") {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// IndexedColumns lists the first column of every index.
func (Dialect) IndexedColumns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]string, error) {
	return sqlstore.QueryStrings(ctx, q, `
SELECT COLUMN_NAME FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1`, schemaArg(table), table.Table)
}

// exactText is the column's text as utf8mb4 bytes: comparing it with the parameter's bytes
// ignores collations (case, accents, trailing spaces) and never coerces numbers.
func exactText(quoted string) string {
	return "CAST(CONVERT(" + quoted + " USING utf8mb4) AS BINARY)"
}

// Equal is exact: integers compare as integers when value is one, in its canonical form (a
// string against an integer column would be coerced, "42abc" = 42, and fails UPDATE/DELETE in
// strict mode); text compares with the column's collation, which an index can serve, refined by
// a byte comparison; binary strings compare bytes; anything else compares its text.
func (Dialect) Equal(b *sqlstore.Builder, col sqlstore.Column, quoted, value string) (string, bool) {
	if !utf8.ValidString(value) {
		return "", false
	}
	switch {
	case isInteger(col.Type) && strings.HasSuffix(col.Type, " unsigned"):
		n, ok := sqlstore.CanonicalUint(value)
		if !ok {
			return "", false
		}
		return quoted + " = " + b.Arg(n), true
	case isInteger(col.Type):
		n, ok := sqlstore.CanonicalInt(value)
		if !ok {
			return "", false
		}
		return quoted + " = " + b.Arg(n), true
	case col.Text:
		return textEqual(b, col, quoted, value), true
	case col.Type == "binary" || col.Type == "varbinary" || strings.HasSuffix(col.Type, "blob"):
		return quoted + " = CAST(" + b.Arg(value) + " AS BINARY)", true
	default:
		return exactText(quoted) + " = CAST(" + b.Arg(value) + " AS BINARY)", true
	}
}

// catalogName is what a charset or collation name from the catalog must look like before it is
// written into SQL text.
var catalogName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// textEqual compares in the column's own charset and collation, which its index serves, and
// refines by bytes. The parameter is converted to the column's charset explicitly: comparing a
// latin1 column with a utf8mb4 parameter holding a character latin1 lacks is otherwise an
// "illegal mix of collations" error. Lossy conversion ('🙂' -> '?') is harmless since the byte
// comparison compares the unconverted value.
func textEqual(b *sqlstore.Builder, col sqlstore.Column, quoted, value string) string {
	exact := exactText(quoted) + " = CAST(" + "%s" + " AS BINARY)"
	if !catalogName.MatchString(col.Charset) || !catalogName.MatchString(col.Collation) {
		return fmt.Sprintf(exact, b.Arg(value))
	}
	first := quoted + " = CONVERT(" + b.Arg(value) + " USING " + col.Charset + ") COLLATE " + col.Collation
	return first + " AND " + fmt.Sprintf(exact, b.Arg(value))
}

// Contains uses INSTR on bytes: no wildcards, no collation.
func (Dialect) Contains(b *sqlstore.Builder, _ sqlstore.Column, quoted, value string) (string, bool) {
	if !utf8.ValidString(value) {
		return "", false
	}
	return "INSTR(" + exactText(quoted) + ", CAST(" + b.Arg(value) + " AS BINARY)) > 0", true
}

// Hash is SHA2(salt || UTF-8 text, 256), which MySQL returns as lower-case hex.
func (Dialect) Hash(b *sqlstore.Builder, quoted string, salt []byte) string {
	return "SHA2(CONCAT(CAST(" + b.Arg(salt) + " AS BINARY), " + exactText(quoted) + "), 256)"
}

// AsColumnText converts to the column's charset and collation: a utf8mb4 value in a CASE with
// a latin1 column is otherwise an "illegal mix of collations".
func (Dialect) AsColumnText(col sqlstore.Column, expr string) string {
	if !catalogName.MatchString(col.Charset) || !catalogName.MatchString(col.Collation) {
		return expr
	}
	return "CONVERT(" + expr + " USING " + col.Charset + ") COLLATE " + col.Collation
}

// LooksHashed: 64 characters, all hex digits (UNHEX is NULL otherwise), none upper-case. It avoids
// REGEXP, whose case sensitivity differs between MySQL and MariaDB.
func (Dialect) LooksHashed(quoted string) string {
	return "(CHAR_LENGTH(" + quoted + ") = 64 AND UNHEX(" + quoted + ") IS NOT NULL AND " +
		exactText(quoted) + " = " + exactText("LOWER("+quoted+")") + ")"
}

func limitClause(limit int) string {
	if limit <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", limit)
}

// Delete uses DELETE ... LIMIT.
func (Dialect) Delete(quotedTable, cond string, limit int) string {
	return "DELETE FROM " + quotedTable + " WHERE " + cond + limitClause(limit)
}

// Update uses UPDATE ... LIMIT.
func (Dialect) Update(quotedTable, set, cond string, limit int) string {
	return "UPDATE " + quotedTable + " SET " + set + " WHERE " + cond + limitClause(limit)
}

// Classify sorts server error numbers; client-side connection failures are transient.
func (Dialect) Classify(err error) connector.ErrorKind {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return classifyNumber(myErr.Number)
	}
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) {
		return connector.KindUnavailable
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return connector.KindUnavailable
	}
	return connector.KindUnavailable
}

func classifyNumber(n uint16) connector.ErrorKind {
	switch n {
	case 1044, 1045, 1142, 1143, 1227, 1370, 1698, 1862:
		// access denied (database, password, table, column, privilege, routine, socket auth,
		// expired password)
		return connector.KindAuth
	case 1049:
		// unknown database: the DSN names a database that does not exist
		return connector.KindInvalid
	case 1054, 1146, 1109, 1305, 1048, 1406, 1366, 1292, 1451, 1452, 1264, 1265, 1064, 1149, 1267, 1271:
		// unknown column/table/function, NOT NULL, too long, bad value, foreign keys, out of
		// range, syntax, collation mixes: the mapping does not fit the schema
		return connector.KindMapping
	}
	return connector.KindUnavailable
}
