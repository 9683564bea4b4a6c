// Package postgres is the PostgreSQL connector. Blank-import it to register it:
//
//	import _ "github.com/dsr-operator/dsr-operator/internal/connector/postgres"
//
// The secret is a libpq URL or keyword/value DSN, as pgx parses it, with the keys of AllowedKeys
// only: none that reads a local file (sslkey, sslcert, sslrootcert, passfile, service...).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

func init() {
	connector.Register(privacyv1alpha1.StoreTypePostgres, NewProvider(sqlstore.Options{}))
}

// NewProvider returns a PostgreSQL provider with opts.
func NewProvider(opts sqlstore.Options) *sqlstore.Provider {
	return sqlstore.NewProvider(Dialect{}, opts)
}

// Dialect is PostgreSQL's sqlstore.Dialect.
type Dialect struct{}

var _ sqlstore.Dialect = Dialect{}

// Type is postgres.
func (Dialect) Type() privacyv1alpha1.StoreType { return privacyv1alpha1.StoreTypePostgres }

// Open parses the DSN (see parseDSN) and opens a database/sql pool over it whose connections go
// through dial.
func (Dialect) Open(secret []byte, dial connector.DialFunc) (*sql.DB, error) {
	cfg, err := parseDSN(strings.TrimSpace(string(secret)))
	if err != nil {
		return nil, err
	}
	if dial != nil {
		// Every host and fallback of the DSN is dialled through it, after resolution.
		cfg.DialFunc = dial
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "dsr-operator"
	}
	pingIdle := stdlib.OptionShouldPing(func(_ context.Context, p stdlib.ShouldPingParams) bool { return p.IdleDuration > reusePingAfter })
	return stdlib.OpenDB(*cfg, pingIdle), nil
}

// reusePingAfter is how long a pooled connection may have been idle before it is pinged on reuse:
// after a server restart or a failover the next erasure gets a live connection, not the corpse
// of an old one. A connection in steady use is not pinged: a ping on every reuse doubled the
// round trips of every read under load, and a connection that died in the last moment fails its
// statement as Unavailable, which the request retries.
const reusePingAfter = 250 * time.Millisecond

// QuoteIdent double-quotes name.
func (Dialect) QuoteIdent(name string) string { return sqlstore.QuoteWith(`"`, name) }

// Placeholder is $n.
func (Dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// FoldColumnNames is false: quoted PostgreSQL names are case-sensitive.
func (Dialect) FoldColumnNames() bool { return false }

// Columns reads pg_attribute. The table is resolved with to_regclass, so an unqualified name
// follows the connection's search_path as every statement will.
func (Dialect) Columns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]sqlstore.Column, error) {
	rows, err := q.QueryContext(ctx, `
SELECT a.attname, bt.typname, bt.typcategory::text,
       NOT a.attnotnull AND NOT t.typnotnull,
       CASE WHEN bt.typname IN ('varchar', 'bpchar')
            THEN GREATEST(COALESCE(NULLIF(CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, -1), 4) - 4, 0)
            ELSE 0 END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, regclassName(table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []sqlstore.Column
	for rows.Next() {
		var c sqlstore.Column
		var category string
		var maxLen int64
		if err := rows.Scan(&c.Name, &c.Type, &category, &c.Nullable, &maxLen); err != nil {
			return nil, err
		}
		c.MaxLen = int(maxLen)
		c.Text = category == "S"
		c.Searchable = c.Text || c.Type == "json" || c.Type == "jsonb" || c.Type == "xml"
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// regclassName is the quoted name to_regclass parses back into the same table.
func regclassName(table sqlstore.TableName) string {
	d := Dialect{}
	if table.Schema == "" {
		return d.QuoteIdent(table.Table)
	}
	return d.QuoteIdent(table.Schema) + "." + d.QuoteIdent(table.Table)
}

// IndexedColumns lists the first column of every index of the table.
func (Dialect) IndexedColumns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]string, error) {
	return sqlstore.QueryStrings(ctx, q, `
SELECT a.attname
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = to_regclass($1::text)`, regclassName(table))
}

// bindable: PostgreSQL text cannot hold NUL or invalid UTF-8, so such a value matches nothing
// (and binding it would fail the statement).
func bindable(v string) bool {
	return utf8.ValidString(v) && !strings.ContainsRune(v, 0)
}

var canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Equal compares by type so that indexes stay usable and the comparison stays exact:
// integers and uuids only when value is their canonical text; text and varchar directly;
// other string types (citext folds case, bpchar ignores padding, name truncates a long value to
// 63 bytes) through an index-friendly = refined by their exact text;
// everything else by its text.
func (Dialect) Equal(b *sqlstore.Builder, col sqlstore.Column, quoted, value string) (string, bool) {
	if !bindable(value) {
		return "", false
	}
	switch {
	case col.Type == "int2" || col.Type == "int4" || col.Type == "int8":
		n, ok := sqlstore.CanonicalInt(value)
		if !ok {
			return "", false
		}
		return quoted + " = " + b.Arg(n) + "::int8", true
	case col.Type == "uuid":
		if !canonicalUUID.MatchString(value) {
			return "", false
		}
		return quoted + " = " + b.Arg(value) + "::uuid", true
	case col.Type == "text" || col.Type == "varchar":
		return quoted + " = " + b.Arg(value), true
	case col.Text:
		return quoted + " = " + b.Arg(value) + " AND " + quoted + "::text = " + b.Arg(value) + "::text", true
	default:
		return quoted + "::text = " + b.Arg(value), true
	}
}

var _ sqlstore.EqualAnyer = Dialect{}

// EqualAny is Equal over several values, as one array parameter: "col = ANY($1::int8[])" is
// planned as the index lookup an IN list is, but the statement's text does not grow with the
// values (a subject with 2,000 derived order ids is one parameter, not 2,000 to parse and plan)
// and is the same for every subject, so the driver's statement cache serves it. Values Equal
// would refuse (not canonical integers or uuids, invalid text) are left out, as Equal leaves
// them; the string types Equal refines by their text (citext, bpchar, name) keep Equal.
func (Dialect) EqualAny(b *sqlstore.Builder, col sqlstore.Column, quoted string, values []string) (string, bool) {
	switch {
	case col.Type == "int2" || col.Type == "int4" || col.Type == "int8":
		ints := make([]int64, 0, len(values))
		for _, v := range values {
			if n, ok := sqlstore.CanonicalInt(v); ok {
				ints = append(ints, n)
			}
		}
		if len(ints) == 0 {
			return "", false
		}
		return quoted + " = ANY(" + b.Arg(ints) + "::int8[])", true
	case col.Type == "uuid":
		return anyText(b, quoted, "::uuid[]", values, func(v string) bool { return canonicalUUID.MatchString(v) })
	case col.Type == "text" || col.Type == "varchar":
		return anyText(b, quoted, "", values, bindable)
	case col.Text:
		return "", false
	default:
		return anyText(b, quoted+"::text", "", values, bindable)
	}
}

// anyText compares lhs with the values keep accepts, bound as one text array cast by cast.
func anyText(b *sqlstore.Builder, lhs, cast string, values []string, keep func(string) bool) (string, bool) {
	kept := make([]string, 0, len(values))
	for _, v := range values {
		if keep(v) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		return "", false
	}
	return lhs + " = ANY(" + b.Arg(kept) + "::text[]" + cast + ")", true
}

// Contains uses strpos, which compares bytes and has no wildcards.
func (Dialect) Contains(b *sqlstore.Builder, _ sqlstore.Column, quoted, value string) (string, bool) {
	if !bindable(value) {
		return "", false
	}
	return "strpos(" + quoted + "::text, " + b.Arg(value) + ") > 0", true
}

// Hash is sha256(salt || UTF-8 text), hex.
func (Dialect) Hash(b *sqlstore.Builder, quoted string, salt []byte) string {
	return "encode(sha256(" + b.Arg(salt) + "::bytea || convert_to(" + quoted + "::text, 'UTF8')), 'hex')"
}

// AsColumnText needs no conversion: the database has one encoding.
func (Dialect) AsColumnText(_ sqlstore.Column, expr string) string { return expr }

// LooksHashed matches 64 lower-case hex digits.
func (Dialect) LooksHashed(quoted string) string {
	return quoted + "::text ~ '^[0-9a-f]{64}$'"
}

// limitedCond keeps a batch to about limit rows while re-checking cond on every row: ctids are
// only unique within one partition, so the re-check stops a ctid picked in one partition from
// touching a bystander with the same ctid in another. "= ANY(ARRAY(...))" lets the planner use
// a TID scan.
func limitedCond(quotedTable, cond string, limit int) string {
	if limit <= 0 {
		return cond
	}
	return fmt.Sprintf("ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %s LIMIT %d)) AND %s", quotedTable, cond, limit, cond)
}

// Delete deletes through limitedCond.
func (Dialect) Delete(quotedTable, cond string, limit int) string {
	return "DELETE FROM " + quotedTable + " WHERE " + limitedCond(quotedTable, cond, limit)
}

// Update updates through limitedCond.
func (Dialect) Update(quotedTable, set, cond string, limit int) string {
	return "UPDATE " + quotedTable + " SET " + set + " WHERE " + limitedCond(quotedTable, cond, limit)
}

// Classify sorts PostgreSQL errors by SQLSTATE class.
func (Dialect) Classify(err error) connector.ErrorKind {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return classifySQLState(pgErr.Code)
	}
	var parseErr *pgconn.ParseConfigError
	if errors.As(err, &parseErr) {
		return connector.KindInvalid
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return connector.KindUnavailable
	}
	return connector.KindUnavailable
}

func classifySQLState(code string) connector.ErrorKind {
	switch code {
	case "28P01", "28000", "42501":
		// invalid_password, invalid_authorization_specification, insufficient_privilege
		return connector.KindAuth
	case "3D000":
		// invalid_catalog_name: the DSN names a database that does not exist.
		return connector.KindInvalid
	case "40001", "40P01", "55P03", "25006":
		// serialization_failure, deadlock_detected, lock_not_available, read_only_sql_transaction
		return connector.KindUnavailable
	}
	switch code[:2] {
	case "08", "53", "54", "57", "58", "XX":
		return connector.KindUnavailable
	case "42", "22", "23", "3F", "2B":
		// undefined table/column/function, data exceptions (value too long), constraint
		// violations (a foreign key still referencing a deleted row), unknown schema
		return connector.KindMapping
	}
	return connector.KindUnavailable
}

var _ sqlstore.Pipeliner = Dialect{}

// ExecAtomic sends queries as one pgx batch: every statement's Bind and Execute up to a single
// Sync, which PostgreSQL runs as one implicit transaction, so a failing statement rolls back the
// ones before it. One round trip instead of BEGIN, a round trip per statement and COMMIT.
func (Dialect) ExecAtomic(ctx context.Context, db *sql.DB, queries []sqlstore.Query) ([]int64, int, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, -1, err
	}
	defer func() { _ = conn.Close() }()
	changed := make([]int64, 0, len(queries))
	failed := -1
	err = conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: unexpected driver connection %T", driverConn)
		}
		batch := &pgx.Batch{}
		for _, q := range queries {
			batch.Queue(q.SQL, q.Args...)
		}
		results := sc.Conn().SendBatch(ctx, batch)
		for i := range queries {
			tag, err := results.Exec()
			if err != nil {
				failed = i
				_ = results.Close()
				return err
			}
			changed = append(changed, tag.RowsAffected())
		}
		return results.Close()
	})
	if err != nil {
		return nil, failed, err
	}
	return changed, -1, nil
}
