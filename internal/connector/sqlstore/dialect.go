package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Querier is what both *sql.DB and *sql.Tx offer.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Column is one column of a table as the database's catalog describes it.
type Column struct {
	// Name as the catalog spells it.
	Name string
	// Type is the catalog's type name, lower case (dialects decide how to compare values with it).
	Type string
	// Text: the column holds arbitrary character data, so redact and hash can write it.
	Text bool
	// Searchable: deep verify searches it for identifier values (Text, plus json, xml...).
	Searchable bool
	// Nullable: nullify can write NULL.
	Nullable bool
	// MaxLen is the declared maximum length in characters; 0 when unlimited or unknown.
	MaxLen int
	// Charset and Collation of a text column, for dialects whose comparisons depend on them
	// (MySQL); empty elsewhere.
	Charset   string
	Collation string
}

// Dialect is everything that differs between the SQL databases. Implementations are stateless.
type Dialect interface {
	// Type is the store type the dialect serves.
	Type() privacyv1alpha1.StoreType
	// Open parses the secret (DSN or path) and opens a pool without connecting. A malformed secret
	// is a KindInvalid error whose message must not repeat the secret. Every network connection
	// goes through dial (connector.Config.DialContext, which enforces the egress policy); nil is
	// the driver's own dialer, for tests only.
	Open(secret []byte, dial connector.DialFunc) (*sql.DB, error)
	// QuoteIdent quotes one identifier part.
	QuoteIdent(name string) string
	// Placeholder is the marker of the n-th (1-based) bound argument.
	Placeholder(n int) string
	// FoldColumnNames: column names compare case-insensitively (MySQL, SQLite).
	FoldColumnNames() bool

	// Columns lists the table's columns; nil without error when the table does not exist.
	Columns(ctx context.Context, q Querier, table TableName) ([]Column, error)
	// IndexedColumns lists the columns that lead an index (so an equality on them is an index lookup).
	IndexedColumns(ctx context.Context, q Querier, table TableName) ([]string, error)

	// Equal is a predicate that holds exactly when the column's value is value: no collation
	// folding, no padding, no numeric coercion ("42.0" must not match 42). ok is false when no
	// value of the column can equal value (e.g. a non-integer against an integer column, NUL in
	// PostgreSQL text); the caller then leaves the predicate out. The predicate must never be NULL
	// for a non-NULL column.
	Equal(b *Builder, col Column, quoted, value string) (pred string, ok bool)
	// Contains is a predicate that holds when the column's text holds value as a substring,
	// compared byte for byte; ok as for Equal.
	Contains(b *Builder, col Column, quoted, value string) (pred string, ok bool)
	// Hash is an expression for the lower-case hex SHA-256 of salt followed by the column's
	// UTF-8 text.
	Hash(b *Builder, quoted string, salt []byte) string
	// AsColumnText converts a text expression (a hash, the marker) to the column's character set
	// and collation, so that it can share a CASE with the column's own value.
	AsColumnText(col Column, expr string) string
	// LooksHashed is a predicate, never NULL for a non-NULL column, that holds when the column
	// holds 64 lower-case hex digits: what Hash writes.
	LooksHashed(quoted string) string
	// Delete deletes rows of table satisfying cond: all of them when limit is 0, otherwise about
	// limit of them (never a row that does not satisfy cond). cond may be repeated in the
	// statement only by a dialect with numbered placeholders.
	Delete(quotedTable, cond string, limit int) string
	// Update applies set to rows of table satisfying cond, limited as for Delete. set's
	// placeholders come before cond's.
	Update(quotedTable, set, cond string, limit int) string

	// Classify says what kind of failure a driver error is. Context errors and connector errors
	// are handled before it is called.
	Classify(err error) connector.ErrorKind
	// ErrorCode is the database's own code of a driver error, labelled by its scheme
	// ("SQLSTATE 42P01", "MySQL 1146", "SQLite 5"); empty when it has none. Never message text.
	ErrorCode(err error) string
}

// Builder collects a statement's bound arguments and hands out their placeholders in order.
// Text must be assembled in the order the arguments were added, since "?" placeholders are
// positional.
type Builder struct {
	d    Dialect
	args []any
}

// NewBuilder starts a statement for d.
func NewBuilder(d Dialect) *Builder { return &Builder{d: d} }

// Arg binds v and returns its placeholder.
func (b *Builder) Arg(v any) string {
	b.args = append(b.args, v)
	return b.d.Placeholder(len(b.args))
}

// Args are the arguments bound so far.
func (b *Builder) Args() []any { return b.args }

// Query is one statement and its bound arguments.
type Query struct {
	SQL  string
	Args []any
}

func (b *Builder) query(sql string) Query { return Query{SQL: sql, Args: b.args} }

func foldName(d Dialect, name string) string {
	if d.FoldColumnNames() {
		return strings.ToLower(name)
	}
	return name
}
