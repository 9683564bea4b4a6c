package mysql

import (
	"context"
	"database/sql"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.UniqueColumner = Dialect{}

// UniqueColumns lists the columns a unique index of that one whole column covers (the primary
// key included); functional key parts have no column name and prefix parts a SUB_PART, and
// neither is listed.
func (Dialect) UniqueColumns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]string, error) {
	rows, err := q.QueryContext(ctx, `
SELECT INDEX_NAME, COLUMN_NAME, SUB_PART
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0`, schemaArg(table), table.Table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	parts := map[string]int{}
	whole := map[string]string{}
	for rows.Next() {
		var index string
		var column sql.NullString
		var subPart sql.NullInt64
		if err := rows.Scan(&index, &column, &subPart); err != nil {
			return nil, err
		}
		parts[index]++
		if column.Valid && !subPart.Valid {
			whole[index] = column.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	for index, n := range parts {
		if column, ok := whole[index]; ok && n == 1 {
			out = append(out, column)
		}
	}
	return out, nil
}
