package mysql

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.ForeignKeyReader = Dialect{}

// ForeignKeys lists the single-column foreign keys of every database the connection can see.
// Tables of the DSN's database come back unqualified. The key columns and the delete rules are
// read by two plain queries and joined here: MariaDB fills an information_schema table again for
// every row of a correlated subquery or join, which made the one-statement form take 10-210 ms.
func (Dialect) ForeignKeys(ctx context.Context, q sqlstore.Querier) ([]sqlstore.ForeignKey, error) {
	type key struct{ schema, name, table string }
	rules := map[key]bool{}
	rows, err := q.QueryContext(ctx, `
SELECT CONSTRAINT_SCHEMA, CONSTRAINT_NAME, TABLE_NAME, DELETE_RULE IN ('RESTRICT', 'NO ACTION')
FROM information_schema.REFERENTIAL_CONSTRAINTS`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		var blocks bool
		if err := rows.Scan(&k.schema, &k.name, &k.table, &blocks); err != nil {
			return nil, err
		}
		rules[k] = blocks
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `
SELECT CONSTRAINT_SCHEMA, CONSTRAINT_NAME, ORDINAL_POSITION,
       IF(TABLE_SCHEMA = DATABASE(), '', TABLE_SCHEMA), TABLE_NAME, COLUMN_NAME,
       IF(REFERENCED_TABLE_SCHEMA = DATABASE(), '', REFERENCED_TABLE_SCHEMA), REFERENCED_TABLE_NAME,
       REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY CONSTRAINT_NAME`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fks []sqlstore.ForeignKey
	var keys []key
	multi := map[key]bool{}
	for rows.Next() {
		var fk sqlstore.ForeignKey
		var k key
		var position int
		if err := rows.Scan(&k.schema, &fk.Name, &position, &fk.From.Schema, &fk.From.Table, &fk.FromColumn,
			&fk.To.Schema, &fk.To.Table, &fk.ToColumn); err != nil {
			return nil, err
		}
		k.name, k.table = fk.Name, fk.From.Table
		blocks, ok := rules[k]
		if !ok {
			continue
		}
		if position > 1 {
			// A key over several columns: linked data follows one column to one column.
			multi[k] = true
			continue
		}
		fk.Blocks = blocks
		fks = append(fks, fk)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := fks[:0]
	for i, fk := range fks {
		if !multi[keys[i]] {
			out = append(out, fk)
		}
	}
	return out, nil
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
