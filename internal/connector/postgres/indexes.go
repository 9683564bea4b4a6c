package postgres

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.Indexer = Dialect{}

// Indexes reads pg_index: each valid index's leading column, or its leading expression as
// pg_get_indexdef prints it, and whether it is partial.
func (Dialect) Indexes(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]sqlstore.Index, error) {
	rows, err := q.QueryContext(ctx, `
SELECT c.relname, i.indpred IS NOT NULL, COALESCE(a.attname, ''),
       CASE WHEN i.indkey[0] = 0 THEN pg_catalog.pg_get_indexdef(i.indexrelid, 1, false) ELSE '' END
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] AND i.indkey[0] <> 0
WHERE i.indrelid = to_regclass($1::text) AND i.indisvalid AND i.indisready
ORDER BY c.relname`, regclassName(table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sqlstore.Index
	for rows.Next() {
		var idx sqlstore.Index
		if err := rows.Scan(&idx.Name, &idx.Partial, &idx.Column, &idx.Expr); err != nil {
			return nil, err
		}
		out = append(out, idx)
	}
	return out, rows.Err()
}

// FoldsCase is false: PostgreSQL's text compares by bytes under deterministic collations.
func (Dialect) FoldsCase(sqlstore.Column) bool { return false }

// NormalizedIndexDDL is an expression index on lower(trim(col)), which the email prefilter
// compares.
func (d Dialect) NormalizedIndexDDL(table sqlstore.TableName, col sqlstore.Column) string {
	return "CREATE INDEX " + d.QuoteIdent(sqlstore.NormalizedIndexName(table, col.Name)) + " ON " + regclassName(table) +
		" ((lower(trim(" + d.QuoteIdent(col.Name) + "))))"
}
