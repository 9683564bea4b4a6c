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
	pk, err := sqlstore.QueryStrings(ctx, q, "SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0", table.Table, schema)
	if err != nil {
		return nil, err
	}
	out, err := sqlstore.QueryStrings(ctx, q, `
SELECT MIN(ii.name)
FROM pragma_index_list(?, ?) il, pragma_index_info(il.name, ?) ii
WHERE il."unique" = 1 AND il.partial = 0
GROUP BY il.name
HAVING COUNT(*) = 1 AND MIN(ii.name) IS NOT NULL`, table.Table, schema, schema)
	if err != nil {
		return nil, err
	}
	if len(pk) == 1 {
		out = append(out, pk[0])
	}
	return out, nil
}
