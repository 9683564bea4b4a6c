package mysql

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.KeyRanger = Dialect{}

// ScanKey is the table's primary key when it is a single column of integers or text: InnoDB
// stores the rows in its order, so each range is one stretch of the table. (A table without
// one has a hidden row id that SQL cannot name; MySQL's generated invisible primary key,
// my_row_id, is a column like any other and serves.)
func (d Dialect) ScanKey(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) (*sqlstore.ScanKey, error) {
	rows, err := q.QueryContext(ctx, `
SELECT s.COLUMN_NAME, LOWER(c.DATA_TYPE)
FROM information_schema.STATISTICS s
JOIN information_schema.COLUMNS c
  ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
WHERE s.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND s.TABLE_NAME = ? AND s.INDEX_NAME = 'PRIMARY'`,
		schemaArg(table), table.Table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var columns, types []string
	for rows.Next() {
		var column, dataType string
		if err := rows.Scan(&column, &dataType); err != nil {
			return nil, err
		}
		columns = append(columns, column)
		types = append(types, dataType)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(columns) != 1 || !isInteger(types[0]) && types[0] != "char" && types[0] != "varchar" {
		return nil, nil
	}
	return &sqlstore.ScanKey{Column: d.QuoteIdent(columns[0])}, nil
}

// ScanKeys names the keys ScanKey uses.
func (Dialect) ScanKeys() string { return "single-column primary key of integers or text" }
