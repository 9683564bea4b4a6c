package sqlite

import (
	"context"
	"database/sql"
	"regexp"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.Indexer = Dialect{}

// Indexes reads pragma index_list and index_xinfo. An index leading with an expression has
// no column there (cid -2); its expression is read from the CREATE INDEX statement.
func (d Dialect) Indexes(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) ([]sqlstore.Index, error) {
	schema := schemaArg(table)
	rows, err := q.QueryContext(ctx, `
SELECT il.name, il.partial, COALESCE(ix.name, ''), ix.cid
FROM pragma_index_list(?, ?) AS il, pragma_index_xinfo(il.name, ?) AS ix
WHERE ix.seqno = 0
ORDER BY il.name`, table.Table, schema, schema)
	if err != nil {
		return nil, err
	}
	out, expressions, err := scanIndexList(rows)
	if err != nil {
		return nil, err
	}
	for _, i := range expressions {
		var stmt sql.NullString
		err := q.QueryRowContext(ctx, "SELECT sql FROM "+d.QuoteIdent(schema)+".sqlite_master WHERE type = 'index' AND name = ?",
			out[i].Name).Scan(&stmt)
		if err != nil {
			return nil, err
		}
		out[i].Expr = leadingKey(stmt.String)
	}
	return out, nil
}

// scanIndexList reads the index list and closes rows; expressions are the positions of the indexes
// whose first key is an expression.
func scanIndexList(rows *sql.Rows) (out []sqlstore.Index, expressions []int, err error) {
	defer rows.Close()
	for rows.Next() {
		var idx sqlstore.Index
		var cid int
		if err := rows.Scan(&idx.Name, &idx.Partial, &idx.Column, &cid); err != nil {
			return nil, nil, err
		}
		if cid == -2 {
			expressions = append(expressions, len(out))
		}
		out = append(out, idx)
	}
	return out, expressions, rows.Err()
}

var trailingOrder = regexp.MustCompile(`(?i)\s+(asc|desc)\s*$`)

// leadingKey is the first key of a CREATE INDEX statement: the text from the parenthesis after
// ON up to the first comma or closing parenthesis outside brackets and quotes, without ASC or
// DESC. Empty when the statement does not have that shape.
func leadingKey(stmt string) string {
	on := strings.Index(strings.ToUpper(stmt), " ON ")
	if on < 0 {
		return ""
	}
	open := strings.IndexByte(stmt[on:], '(')
	if open < 0 {
		return ""
	}
	start := on + open + 1
	depth := 0
	var quote byte
	for i := start; i < len(stmt); i++ {
		c := stmt[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '[':
			quote = ']'
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case (c == ')' || c == ',') && depth == 0:
			return trailingOrder.ReplaceAllString(strings.TrimSpace(stmt[start:i]), "")
		}
	}
	return ""
}

// FoldsCase is false: NOCASE folds ASCII only, and trailing spaces still count.
func (Dialect) FoldsCase(sqlstore.Column) bool { return false }

// NormalizedIndexDDL is an expression index on lower(trim(col)), which the email prefilter
// compares. SQLite names the schema on the index, not on the table.
func (d Dialect) NormalizedIndexDDL(table sqlstore.TableName, col sqlstore.Column) string {
	name := d.QuoteIdent(sqlstore.NormalizedIndexName(table, col.Name))
	if table.Schema != "" {
		name = d.QuoteIdent(table.Schema) + "." + name
	}
	return "CREATE INDEX " + name + " ON " + d.QuoteIdent(table.Table) + " (lower(trim(" + d.QuoteIdent(col.Name) + ")))"
}
