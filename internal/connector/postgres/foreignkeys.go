package postgres

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.ForeignKeyReader = Dialect{}

// ForeignKeys lists the single-column foreign keys of every schema but the system ones. Tables
// of the first schema of the search_path come back unqualified.
func (Dialect) ForeignKeys(ctx context.Context, q sqlstore.Querier) ([]sqlstore.ForeignKey, error) {
	rows, err := q.QueryContext(ctx, `
SELECT c.conname,
       CASE WHEN sn.nspname = current_schema() THEN '' ELSE sn.nspname END, s.relname, sa.attname,
       CASE WHEN dn.nspname = current_schema() THEN '' ELSE dn.nspname END, d.relname, da.attname,
       c.confdeltype IN ('a', 'r')
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class s ON s.oid = c.conrelid
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class d ON d.oid = c.confrelid
JOIN pg_catalog.pg_namespace dn ON dn.oid = d.relnamespace
JOIN pg_catalog.pg_attribute sa ON sa.attrelid = c.conrelid AND sa.attnum = c.conkey[1]
JOIN pg_catalog.pg_attribute da ON da.attrelid = c.confrelid AND da.attnum = c.confkey[1]
WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
  AND sn.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY c.conname`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fks []sqlstore.ForeignKey
	for rows.Next() {
		var fk sqlstore.ForeignKey
		if err := rows.Scan(&fk.Name, &fk.From.Schema, &fk.From.Table, &fk.FromColumn,
			&fk.To.Schema, &fk.To.Table, &fk.ToColumn, &fk.Blocks); err != nil {
			return nil, err
		}
		fks = append(fks, fk)
	}
	return fks, rows.Err()
}

var _ sqlstore.DefaultSchemaReader = Dialect{}

// DefaultSchema is the schema unqualified names resolve to: the first of the search_path.
func (Dialect) DefaultSchema(ctx context.Context, q sqlstore.Querier) (string, error) {
	var schema *string
	if err := q.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil || schema == nil {
		return "", err
	}
	return *schema, nil
}
