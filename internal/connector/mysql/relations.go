package mysql

import (
	"context"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.RelationLister = Dialect{}

// Relations lists the tables and views of the DSN's database and of extraSchemas (the
// databases the mapping names) that the connection can see, never the system databases. The
// server may hold many more databases the credentials can read; they are other applications'
// and are not searched. Tables of the DSN's database come back unqualified, as the mapping
// and the locations name them.
func (Dialect) Relations(ctx context.Context, q sqlstore.Querier, extraSchemas []string) ([]sqlstore.Relation, error) {
	marks := []string{"DATABASE()"}
	args := make([]any, 0, len(extraSchemas))
	for _, s := range extraSchemas {
		marks = append(marks, "?")
		args = append(args, s)
	}
	rows, err := q.QueryContext(ctx, `
SELECT IF(TABLE_SCHEMA = DATABASE(), '', TABLE_SCHEMA), TABLE_SCHEMA, TABLE_NAME
FROM information_schema.TABLES
WHERE TABLE_SCHEMA IN (`+strings.Join(marks, ", ")+`)
  AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
  AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')
ORDER BY TABLE_SCHEMA, TABLE_NAME`, args...)
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
		r.Location = r.Name.String()
		rels = append(rels, r)
	}
	return rels, rows.Err()
}
