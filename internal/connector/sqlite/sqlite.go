// Package sqlite is the SQLite connector (modernc.org/sqlite, no cgo). Blank-import it to
// register it:
//
//	import _ "github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
//
// The secret is a file path or a file: URI. The file must exist (mode=rw unless the URI sets a
// mode): a mistyped path must not silently create an empty database that "verifies" clean.
//
// SQLite locks the whole database for any write, so statements are not split into batches:
// one statement per table does the work, in one transaction per erasure.
package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"modernc.org/sqlite"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// hashFunction is the SQL function the hash mask strategy calls.
const hashFunction = "dsr_sha256_hex"

func init() {
	sqlite.MustRegisterDeterministicScalarFunction(hashFunction, 2, sha256Hex)
	connector.Register(privacyv1alpha1.StoreTypeSQLite, gated{NewProvider(sqlstore.Options{})})
	enabled.Store(true)
}

// enabled says whether the registered provider opens sqlite stores. A sqlite store opens any
// path its author names, in the operator's own file system: the manager disables the type
// unless --enable-sqlite-stores is set. It is on by default for tests and embedders.
var enabled atomic.Bool

// SetEnabled turns the registered sqlite provider on or off.
func SetEnabled(on bool) { enabled.Store(on) }

// gated refuses every store while the type is disabled, before the path is opened.
type gated struct{ *sqlstore.Provider }

func (g gated) NewClient(ctx context.Context, cfg connector.Config) (connector.Client, error) {
	if !enabled.Load() {
		return nil, connector.Errorf(connector.KindInvalid, "connect",
			"sqlite stores are disabled in this operator: an administrator enables them with --enable-sqlite-stores (chart value sqliteStores.enabled)")
	}
	return g.Provider.NewClient(ctx, cfg)
}

// sha256Hex(salt, text) is the lower-case hex SHA-256 of salt followed by text; NULL stays NULL.
func sha256Hex(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	value, ok := asBytes(args[1])
	if !ok {
		return nil, nil
	}
	salt, _ := asBytes(args[0])
	h := sha256.New()
	h.Write(salt)
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func asBytes(v driver.Value) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case []byte:
		return x, true
	case string:
		return []byte(x), true
	default:
		// The SQL always passes CAST(col AS TEXT); other types only reach here if it changes.
		return []byte(fmt.Sprint(x)), true
	}
}

// NewProvider returns a SQLite provider with opts.
func NewProvider(opts sqlstore.Options) *sqlstore.Provider {
	return sqlstore.NewProvider(Dialect{}, opts)
}

// Dialect is SQLite's sqlstore.Dialect.
type Dialect struct{}

var _ sqlstore.Dialect = Dialect{}

// Type is sqlite.
func (Dialect) Type() privacyv1alpha1.StoreType { return privacyv1alpha1.StoreTypeSQLite }

// DSN turns the secret into the driver's file: URI: the file must exist, writers wait for
// each other instead of failing with SQLITE_BUSY, and write transactions take their lock up front
// so that two erasures cannot deadlock upgrading read locks.
func DSN(secret []byte) (string, error) {
	s := strings.TrimSpace(string(secret))
	if s == "" {
		return "", errors.New("the sqlite path is empty")
	}
	var base, query string
	if strings.HasPrefix(s, "file:") {
		base, query, _ = strings.Cut(s, "?")
	} else {
		base = "file:" + (&url.URL{Path: s}).EscapedPath()
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", errors.New("the sqlite URI's query cannot be parsed")
	}
	if params.Get("mode") == "" {
		params.Set("mode", "rw")
	}
	if params.Get("_txlock") == "" {
		params.Set("_txlock", "immediate")
	}
	hasBusy := params.Get("_busy_timeout") != "" || params.Get("_timeout") != ""
	for _, p := range params["_pragma"] {
		hasBusy = hasBusy || strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), "busy_timeout")
	}
	if !hasBusy {
		params.Add("_pragma", "busy_timeout(10000)")
	}
	return base + "?" + params.Encode(), nil
}

// Open opens a pool on the file. SQLite opens no network connection: dial is unused.
func (Dialect) Open(secret []byte, _ connector.DialFunc) (*sql.DB, error) {
	dsn, err := DSN(secret)
	if err != nil {
		return nil, connector.Errorf(connector.KindInvalid, "connect", "%v", err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, connector.Errorf(connector.KindInvalid, "connect", "the sqlite path cannot be used")
	}
	return db, nil
}

// QuoteIdent double-quotes name.
func (Dialect) QuoteIdent(name string) string { return sqlstore.QuoteWith(`"`, name) }

// Placeholder is ?NNN, numbered: a value compared twice (Equal, EqualAny) is bound once, so a
// statement holds twice as many values under SQLite's limit of 32,766 parameters.
func (Dialect) Placeholder(n int) string { return "?" + strconv.Itoa(n) }

// FoldColumnNames is true: SQLite column names are case-insensitive.
func (Dialect) FoldColumnNames() bool { return true }

func schemaArg(table sqlstore.TableName) string {
	if table.Schema == "" {
		return "main"
	}
	return table.Schema
}

// affinity follows SQLite's rules for a declared type (https://sqlite.org/datatype3.html).
func affinity(declared string) string {
	t := strings.ToUpper(declared)
	switch {
	case strings.Contains(t, "INT"):
		return "integer"
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return "text"
	case t == "", strings.Contains(t, "BLOB"):
		return "blob"
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return "real"
	default:
		return "numeric"
	}
}

// Columns reads pragma_table_info.
func (Dialect) Columns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]sqlstore.Column, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, type, "notnull" FROM pragma_table_info(?, ?) ORDER BY cid`,
		table.Table, schemaArg(table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []sqlstore.Column
	for rows.Next() {
		var c sqlstore.Column
		var declared string
		var notNull bool
		if err := rows.Scan(&c.Name, &declared, &notNull); err != nil {
			return nil, err
		}
		c.Type = affinity(declared)
		c.Nullable = !notNull
		// An untyped column holds whatever is stored, text included.
		c.Text = c.Type == "text" || declared == ""
		c.Searchable = c.Type == "text" || c.Type == "blob"
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// IndexedColumns lists the first column of every index, and the INTEGER PRIMARY KEY, which is
// the rowid itself.
func (Dialect) IndexedColumns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]string, error) {
	schema := schemaArg(table)
	names, err := sqlstore.QueryStrings(ctx, q, `
SELECT ii.name FROM pragma_index_list(?, ?) AS il, pragma_index_info(il.name, ?) AS ii
WHERE ii.seqno = 0 AND ii.name IS NOT NULL`, table.Table, schema, schema)
	if err != nil {
		return nil, err
	}
	var pkCount int
	var pkName, pkType string
	err = q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(name), ''), COALESCE(MAX(type), '')
FROM pragma_table_info(?, ?) WHERE pk > 0`, table.Table, schema).Scan(&pkCount, &pkName, &pkType)
	if err != nil {
		return nil, err
	}
	if pkCount == 1 && strings.EqualFold(pkType, "INTEGER") {
		names = append(names, pkName)
	}
	return names, nil
}

// Equal compares with the column's own affinity and collation, which an index can serve, and
// refines by the bytes of both sides: no NOCASE folding, no "42.0" = 42.
func (Dialect) Equal(b *sqlstore.Builder, _ sqlstore.Column, quoted, value string) (string, bool) {
	v := b.Arg(value)
	return quoted + " = " + v + " AND CAST(" + quoted + " AS BLOB) = CAST(" + v + " AS BLOB)", true
}

var _ sqlstore.EqualAnyer = Dialect{}

// EqualAny is Equal over several values, flat: SQLite refuses an expression more than 1,000
// levels deep, which ORed pairs reach at about 500 values.
func (Dialect) EqualAny(b *sqlstore.Builder, _ sqlstore.Column, quoted string, values []string) (string, bool) {
	plain := make([]string, len(values))
	exact := make([]string, len(values))
	for i, v := range values {
		plain[i] = b.Arg(v)
		exact[i] = "CAST(" + plain[i] + " AS BLOB)"
	}
	return quoted + " IN (" + strings.Join(plain, ", ") + ") AND CAST(" + quoted + " AS BLOB) IN (" + strings.Join(exact, ", ") + ")", true
}

// Contains uses instr on bytes: no wildcards.
func (Dialect) Contains(b *sqlstore.Builder, _ sqlstore.Column, quoted, value string) (string, bool) {
	return "instr(CAST(" + quoted + " AS BLOB), CAST(" + b.Arg(value) + " AS BLOB)) > 0", true
}

// Hash calls the registered Go function.
func (Dialect) Hash(b *sqlstore.Builder, quoted string, salt []byte) string {
	return hashFunction + "(" + b.Arg(salt) + ", CAST(" + quoted + " AS TEXT))"
}

// AsColumnText needs no conversion: the database has one encoding.
func (Dialect) AsColumnText(_ sqlstore.Column, expr string) string { return expr }

// LooksHashed: text of 64 characters, none outside 0-9a-f (GLOB is case-sensitive).
func (Dialect) LooksHashed(quoted string) string {
	return "(typeof(" + quoted + ") = 'text' AND length(" + quoted + ") = 64 AND " + quoted + " NOT GLOB '*[^0-9a-f]*')"
}

// Delete ignores limit: see the package comment.
func (Dialect) Delete(quotedTable, cond string, _ int) string {
	return "DELETE FROM " + quotedTable + " WHERE " + cond
}

// Update ignores limit: see the package comment.
func (Dialect) Update(quotedTable, set, cond string, _ int) string {
	return "UPDATE " + quotedTable + " SET " + set + " WHERE " + cond
}

// SQLite primary result codes (https://sqlite.org/rescode.html).
const (
	codeError      = 1
	codePerm       = 3
	codeReadOnly   = 8
	codeCorrupt    = 11
	codeTooBig     = 18
	codeConstraint = 19
	codeMismatch   = 20
	codeAuth       = 23
	codeRange      = 25
	codeNotADB     = 26
)

// Classify sorts SQLite result codes.
func (Dialect) Classify(err error) connector.ErrorKind {
	var sqlErr *sqlite.Error
	if !errors.As(err, &sqlErr) {
		return connector.KindUnavailable
	}
	switch sqlErr.Code() & 0xff {
	case codePerm, codeReadOnly, codeAuth:
		return connector.KindAuth
	case codeCorrupt, codeNotADB:
		return connector.KindInvalid
	case codeError, codeConstraint, codeMismatch, codeTooBig, codeRange:
		return connector.KindMapping
	}
	// BUSY, LOCKED, IOERR, FULL, CANTOPEN (a volume not mounted yet): worth retrying.
	return connector.KindUnavailable
}
