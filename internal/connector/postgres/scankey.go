package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

var _ sqlstore.KeyRanger = Dialect{}

// tidRangeScans is the first server version whose planner reads a range of ctid by its pages
// (a TID Range Scan) instead of filtering every row.
const tidRangeScans = 140000

// guessRowsPerPage is assumed when the table has never been analysed (reltuples -1).
const guessRowsPerPage = 50

// ScanKey splits a table (or materialized view) by ctid, its rows' physical places: a range of
// pages is read without an index, and rows that move or arrive while the scan runs land in a
// later page or in the last range, which is unbounded. Other relations (a partitioned table, a
// view) and servers before 14 use a single-column primary key of integers or text.
func (d Dialect) ScanKey(ctx context.Context, q sqlstore.Querier, table sqlstore.TableName) (*sqlstore.ScanKey, error) {
	var kind string
	var rangeScans bool
	var pages, relpages int64
	var reltuples float64
	err := q.QueryRowContext(ctx, `
SELECT c.relkind::text, current_setting('server_version_num')::int >= $2,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::bigint ELSE 0 END,
       c.relpages::bigint, c.reltuples::float8
FROM pg_catalog.pg_class c
WHERE c.oid = to_regclass($1::text)`, regclassName(table), tidRangeScans).Scan(&kind, &rangeScans, &pages, &relpages, &reltuples)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rangeScans && (kind == "r" || kind == "m") {
		perPage := int64(guessRowsPerPage)
		if relpages > 0 && reltuples > 0 {
			perPage = max(int64(reltuples)/relpages, 1)
		}
		return &sqlstore.ScanKey{Column: "ctid", Pages: pages, RowsPerPage: perPage,
			PageStart: func(b *sqlstore.Builder, page int64) string {
				return b.Arg("("+strconv.FormatInt(page, 10)+",0)") + "::tid"
			}}, nil
	}
	var column string
	err = q.QueryRowContext(ctx, `
SELECT a.attname
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE i.indrelid = to_regclass($1::text) AND i.indisprimary AND i.indnkeyatts = 1
  AND t.typname IN ('int2', 'int4', 'int8', 'text', 'varchar')`, regclassName(table)).Scan(&column)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &sqlstore.ScanKey{Column: d.QuoteIdent(column)}, nil
}

// ScanKeys names the keys ScanKey uses.
func (Dialect) ScanKeys() string {
	return "ctid (a table or materialized view, PostgreSQL 14 or later) or single-column primary key of integers or text"
}
