package sqlite

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.UniqueColumner = Dialect{}

// UniqueColumns lists the columns that are a table's whole primary key or the one column of a
// unique index (a UNIQUE constraint included) that is not partial; an index on an expression
// has no column name and is not listed.
func (Dialect) UniqueColumns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]string, error) {
	schema := schemaArg(table)
	var out []string
	pk, err := primaryKey(ctx, q, table.Table, schema)
	if err != nil {
		return nil, err
	}
	if len(pk) == 1 {
		out = append(out, pk[0])
	}
	rows, err := q.QueryContext(ctx, `
SELECT MIN(ii.name)
FROM pragma_index_list(?, ?) il, pragma_index_info(il.name, ?) ii
WHERE il."unique" = 1 AND il.partial = 0
GROUP BY il.name
HAVING COUNT(*) = 1 AND MIN(ii.name) IS NOT NULL`, table.Table, schema, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// primaryKey lists the columns of the table's primary key.
func primaryKey(ctx context.Context, q sqlstore.Querier, table, schema string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0", table, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var pk []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		pk = append(pk, name)
	}
	return pk, rows.Err()
}
