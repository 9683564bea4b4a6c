package mysql

import (
	"context"
	"strconv"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.Indexer = Dialect{}

// Indexes reads information_schema.STATISTICS: each index's leading column and, when that
// column is generated, its generation expression (MariaDB writes LOWER as lcase). MySQL 8's
// functional key parts have no column and are not recognised: the advice is a generated column,
// which both servers can use.
func (Dialect) Indexes(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]sqlstore.Index, error) {
	rows, err := q.QueryContext(ctx, `
SELECT s.INDEX_NAME, COALESCE(s.COLUMN_NAME, ''), COALESCE(c.GENERATION_EXPRESSION, '')
FROM information_schema.STATISTICS s
LEFT JOIN information_schema.COLUMNS c
  ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
WHERE s.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND s.TABLE_NAME = ? AND s.SEQ_IN_INDEX = 1
ORDER BY s.INDEX_NAME`, schemaArg(table), table.Table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sqlstore.Index
	for rows.Next() {
		var idx sqlstore.Index
		if err := rows.Scan(&idx.Name, &idx.Column, &idx.Expr); err != nil {
			return nil, err
		}
		out = append(out, idx)
	}
	return out, rows.Err()
}

// FoldsCase holds for the case-insensitive collations (_ci): = and IN then ignore letter case,
// and the column's plain index serves them.
func (Dialect) FoldsCase(col sqlstore.Column) bool {
	return col.Text && strings.HasSuffix(col.Collation, "_ci")
}

// maxShadowChars bounds the advised shadow column: an index key of utf8mb4 holds 3072 bytes.
const maxShadowChars = 768

// NormalizedIndexDDL advises, for a case-insensitive column, a plain index (which its collation
// lets serve every case variant; MariaDB cannot index an expression), and otherwise an indexed
// virtual column holding LOWER(TRIM(col)), which the search then reads.
func (d Dialect) NormalizedIndexDDL(table sqlstore.TableName, col sqlstore.Column) string {
	quotedTable, _ := sqlstore.QuoteTable(d, table)
	name := d.QuoteIdent(sqlstore.NormalizedIndexName(table, col.Name))
	if d.FoldsCase(col) {
		key := d.QuoteIdent(col.Name)
		if col.Type != "char" && col.Type != "varchar" {
			key += "(255)" // a TEXT column is indexed by a prefix
		}
		return "CREATE INDEX " + name + " ON " + quotedTable + " (" + key + ")"
	}
	n := col.MaxLen
	if n <= 0 || n > maxShadowChars {
		n = 320 // the longest address mail systems accept
	}
	shadow := d.QuoteIdent(sqlstore.ShadowColumnName(col.Name))
	return "ALTER TABLE " + quotedTable + " ADD COLUMN " + shadow + " VARCHAR(" + strconv.Itoa(n) + ") AS (LOWER(TRIM(" +
		d.QuoteIdent(col.Name) + "))) VIRTUAL, ADD INDEX " + name + " (" + shadow + ")"
}
