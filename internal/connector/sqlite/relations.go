package sqlite

import (
	"context"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.RelationLister = Dialect{}

// Relations lists the tables, views and virtual tables of the main database and of extraSchemas
// (attached databases the mapping names), never SQLite's own tables nor the shadow tables
// behind a virtual table (their rows are searched through it). Tables of main come back
// unqualified, as the mapping and the locations name them.
func (Dialect) Relations(ctx context.Context, q sqlstore.Querier, extraSchemas []string) ([]sqlstore.Relation, error) {
	marks := []string{"'main'"}
	args := make([]any, 0, len(extraSchemas))
	for _, s := range extraSchemas {
		marks = append(marks, "?")
		args = append(args, s)
	}
	rows, err := q.QueryContext(ctx, `
SELECT schema, name FROM pragma_table_list
WHERE schema IN (`+strings.Join(marks, ", ")+`)
  AND type IN ('table', 'view', 'virtual')
  AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
ORDER BY schema, name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rels []sqlstore.Relation
	for rows.Next() {
		var r sqlstore.Relation
		if err := rows.Scan(&r.Qualified.Schema, &r.Qualified.Table); err != nil {
			return nil, err
		}
		r.Name = r.Qualified
		if strings.EqualFold(r.Name.Schema, "main") {
			r.Name.Schema = ""
		}
		r.Location = r.Name.String()
		rels = append(rels, r)
	}
	return rels, rows.Err()
}
