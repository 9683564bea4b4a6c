package sqlite

import (
	"context"
	"fmt"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.ForeignKeyReader = Dialect{}

// ForeignKeys lists the single-column foreign keys of the main database. SQLite keeps no
// constraint names, so each is named after its columns. A key naming no parent column refers to
// the parent's primary key.
func (Dialect) ForeignKeys(ctx context.Context, q sqlstore.Querier) ([]sqlstore.ForeignKey, error) {
	rows, err := q.QueryContext(ctx, `
SELECT m.name, f."table", f."from",
       COALESCE(f."to", (SELECT p.name FROM pragma_table_info(f."table") p WHERE p.pk = 1)),
       f.on_delete IN ('NO ACTION', 'RESTRICT')
FROM sqlite_master m, pragma_foreign_key_list(m.name) f
WHERE m.type = 'table'
  AND (SELECT COUNT(*) FROM pragma_foreign_key_list(m.name) g WHERE g.id = f.id) = 1
ORDER BY m.name, f.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fks []sqlstore.ForeignKey
	for rows.Next() {
		var fk sqlstore.ForeignKey
		var to *string
		if err := rows.Scan(&fk.From.Table, &fk.To.Table, &fk.FromColumn, &to, &fk.Blocks); err != nil {
			return nil, err
		}
		if to == nil {
			continue
		}
		fk.ToColumn = *to
		fk.Name = fmt.Sprintf("%s_%s_fkey", fk.From.Table, fk.FromColumn)
		fks = append(fks, fk)
	}
	return fks, rows.Err()
}

var _ sqlstore.DefaultSchemaReader = Dialect{}

// DefaultSchema is main, the database unqualified names resolve to first.
func (Dialect) DefaultSchema(context.Context, sqlstore.Querier) (string, error) { return "main", nil }
