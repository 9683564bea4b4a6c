package postgres

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.RelationLister = Dialect{}

// Relations lists the tables, partitioned tables, views and materialized views of every schema
// of the database whose schema the connection may use and which it may SELECT from. Partitions
// are left out: their rows are searched through their parent. Foreign tables are left out too:
// reading them reaches another server. The connection sees one database, so extra schemas add
// nothing. Tables of the first schema of the search_path come back unqualified in Name;
// locations are always schema.table.
func (Dialect) Relations(ctx context.Context, q sqlstore.Querier, _ []string) ([]sqlstore.Relation, error) {
	rows, err := q.QueryContext(ctx, `
SELECT CASE WHEN n.nspname = current_schema() THEN '' ELSE n.nspname END, n.nspname, c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rels []sqlstore.Relation
	for rows.Next() {
		var r sqlstore.Relation
		if err := rows.Scan(&r.Name.Schema, &r.Qualified.Schema, &r.Name.Table); err != nil {
			return nil, err
		}
		r.Qualified.Table = r.Name.Table
		r.Location = r.Qualified.Schema + "." + r.Qualified.Table
		rels = append(rels, r)
	}
	return rels, rows.Err()
}
