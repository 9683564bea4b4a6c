package postgres

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.UniqueColumner = Dialect{}

// UniqueColumns lists the columns a unique index of that one column covers (the primary key
// included), leaving out partial and expression indexes, which do not make the column unique.
func (Dialect) UniqueColumns(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]string, error) {
	return sqlstore.QueryStrings(ctx, q, `
SELECT a.attname
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = to_regclass($1::text) AND i.indisunique AND i.indnkeyatts = 1
  AND i.indkey[0] <> 0 AND i.indpred IS NULL`, regclassName(table))
}
