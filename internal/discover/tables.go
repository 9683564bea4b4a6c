package discover

import (
	"context"
	"fmt"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// tableQueries list the base tables of the connection's default schema: the one whose tables a
// mapping names unqualified (PostgreSQL's current_schema(), the DSN's MySQL database, SQLite's
// main). Views are left out: nothing is erased through them.
var tableQueries = map[privacyv1alpha1.StoreType]string{
	privacyv1alpha1.StoreTypePostgres: `
SELECT c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY 1`,
	privacyv1alpha1.StoreTypeMySQL: `
SELECT TABLE_NAME FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
ORDER BY 1`,
	privacyv1alpha1.StoreTypeSQLite: `
SELECT name FROM sqlite_master
WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
ORDER BY 1`,
}

func listTables(ctx context.Context, d sqlstore.Dialect, q sqlstore.Querier) ([]string, error) {
	query, ok := tableQueries[d.Type()]
	if !ok {
		return nil, fmt.Errorf("discover does not read %s catalogs", d.Type())
	}
	return sqlstore.QueryStrings(ctx, q, query)
}

func lower(s string) string { return strings.ToLower(s) }
