package mysql

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.ForeignKeyReader = Dialect{}

// ForeignKeys lists the single-column foreign keys of every database the connection can see.
// Tables of the DSN's database come back unqualified.
func (Dialect) ForeignKeys(ctx context.Context, q sqlstore.Querier) ([]sqlstore.ForeignKey, error) {
	rows, err := q.QueryContext(ctx, `
SELECT k.CONSTRAINT_NAME,
       IF(k.TABLE_SCHEMA = DATABASE(), '', k.TABLE_SCHEMA), k.TABLE_NAME, k.COLUMN_NAME,
       IF(k.REFERENCED_TABLE_SCHEMA = DATABASE(), '', k.REFERENCED_TABLE_SCHEMA), k.REFERENCED_TABLE_NAME,
       k.REFERENCED_COLUMN_NAME,
       r.DELETE_RULE IN ('RESTRICT', 'NO ACTION')
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.REFERENCED_TABLE_NAME IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM information_schema.KEY_COLUMN_USAGE k2
                  WHERE k2.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND k2.CONSTRAINT_NAME = k.CONSTRAINT_NAME
                    AND k2.TABLE_NAME = k.TABLE_NAME AND k2.ORDINAL_POSITION > 1)
ORDER BY k.CONSTRAINT_NAME`)
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

// DefaultSchema is the DSN's database, which unqualified names resolve to.
func (Dialect) DefaultSchema(ctx context.Context, q sqlstore.Querier) (string, error) {
	var schema *string
	if err := q.QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&schema); err != nil || schema == nil {
		return "", err
	}
	return *schema, nil
}
