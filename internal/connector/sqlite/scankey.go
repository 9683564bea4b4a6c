package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.KeyRanger = Dialect{}

// rowidNames are the names SQL reaches a table's rowid by, unless a column takes the name.
var rowidNames = []string{"rowid", "_rowid_", "oid"}

// ScanKey is the rowid, the key SQLite stores a table's rows by, under the first of its names
// no column shadows. A WITHOUT ROWID table is stored by its primary key, which serves when it
// is a single column of integers or text; views and virtual tables have no key.
func (d Dialect) ScanKey(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) (*sqlstore.ScanKey, error) {
	schema := schemaArg(table)
	var kind string
	var withoutRowid bool
	err := q.QueryRowContext(ctx, "SELECT type, wr FROM pragma_table_list(?) WHERE schema = ?",
		table.Table, schema).Scan(&kind, &withoutRowid)
	if errors.Is(err, sql.ErrNoRows) || err == nil && kind != "table" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT name, type, pk FROM pragma_table_xinfo(?, ?)", table.Table, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	taken := map[string]bool{}
	var pk []string
	var pkType string
	for rows.Next() {
		var name, declared string
		var pkPos int
		if err := rows.Scan(&name, &declared, &pkPos); err != nil {
			return nil, err
		}
		taken[strings.ToLower(name)] = true
		if pkPos > 0 {
			pk = append(pk, name)
			pkType = affinity(declared)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !withoutRowid {
		for _, name := range rowidNames {
			if !taken[name] {
				return &sqlstore.ScanKey{Column: name}, nil
			}
		}
	}
	// The primary key of a WITHOUT ROWID table is NOT NULL; a rowid table's may hold NULLs.
	if withoutRowid && len(pk) == 1 && (pkType == "integer" || pkType == "text") {
		return &sqlstore.ScanKey{Column: d.QuoteIdent(pk[0])}, nil
	}
	return nil, nil
}

// ScanKeys names the keys ScanKey uses.
func (Dialect) ScanKeys() string {
	return "rowid (a WITHOUT ROWID table: single-column primary key of integers or text)"
}
