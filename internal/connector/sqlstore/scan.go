package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Batched scans. A normalised match column that no index serves (an email column without an
// index on lower(trim(col)), and every phone column) is searched by evaluating the prefilter on
// every row. One statement over a big table runs as long as the table is big: it can outlast
// the connection timeout, and it holds its snapshot and the database's resources for all that
// time. So the scan is split into statements of about Options.ScanBatchRows rows each, by a key
// the dialect names (KeyRanger): consecutive key ranges that together cover every possible
// key, the last one unbounded above, so that every row, including one appended while the scan
// runs, falls into exactly one batch. Memory stays bounded as before: rows are streamed, and
// only the subject's spellings are kept.

// DefaultScanBatchRows is how many rows one statement of a batched scan reads by default.
const DefaultScanBatchRows = 10000

// KeyRanger is what a dialect offers to scan a table in bounded batches. A dialect without it,
// or a table for which ScanKey returns nil, is scanned in one statement (and Check warns).
type KeyRanger interface {
	// ScanKey returns the key the table's rows are split by, or nil when the table has none.
	ScanKey(ctx context.Context, q Querier, table TableName) (*ScanKey, error)
	// ScanKeys says which keys the dialect scans by, for Check's advice.
	ScanKeys() string
}

// ScanKey is a key that splits a table's rows into ranges. It is either ordered (Column: a
// unique, never NULL column read in its own order, such as SQLite's rowid or a single-column
// primary key) or paged (PageStart: rows split by the page that holds them, such as
// PostgreSQL's ctid).
type ScanKey struct {
	// Column is the key as SQL writes it, quoted. Its values must read back into Go values that
	// compare the same way when bound again (integers and text).
	Column string
	// PageStart, when set, makes the key paged: it writes the key's lowest value on page
	// (Column >= it holds for every row on that page or later).
	PageStart func(b *Builder, page int64) string
	// Pages is the table's size in pages when the key was read (paged keys only).
	Pages int64
	// RowsPerPage estimates how many rows a page holds (paged keys only; at least 1).
	RowsPerPage int64
}

// errNullScanKey: a scan key read back NULL, which the dialect promised it never is.
var errNullScanKey = errors.New("the scan key of a table is NULL in some row")

// scanBatch is one key range of a scan: cond selects its rows ("" for the whole table), and b
// holds cond's arguments; the statement adds its own after them.
type scanBatch struct {
	b    *Builder
	cond string
}

// scanBatches calls each with every batch of t in key order, until the last one, which is
// unbounded above. rows is the batch size.
func (s *Store) scanBatches(ctx context.Context, q Querier, t *Table, key *ScanKey, rows int,
	each func(scanBatch) error) error {
	if key.PageStart != nil {
		return pagedBatches(t.d, key, rows, each)
	}
	var lo any
	for {
		hi, err := s.nextBound(ctx, q, t, key, lo, rows)
		if err != nil {
			return err
		}
		b := NewBuilder(t.d)
		var cond string
		switch {
		case lo != nil && hi != nil:
			cond = key.Column + " > " + b.Arg(lo) + " AND " + key.Column + " <= " + b.Arg(hi)
		case lo != nil:
			cond = key.Column + " > " + b.Arg(lo)
		case hi != nil:
			cond = key.Column + " <= " + b.Arg(hi)
		}
		if err := each(scanBatch{b: b, cond: cond}); err != nil {
			return err
		}
		if hi == nil {
			return nil
		}
		lo = hi
	}
}

// nextBound is the key of the rows-th row after lo (from the first row when lo is nil), which
// ends the batch that starts after lo; nil when fewer rows remain, so that the batch is the
// last. The key's index serves it. Each bound passes "> lo" under the very comparison the
// batches use, so the ranges cover the table even where ORDER BY would sort otherwise (a
// collation): only the batches' sizes would suffer.
func (s *Store) nextBound(ctx context.Context, q Querier, t *Table, key *ScanKey, lo any, rows int) (any, error) {
	b := NewBuilder(t.d)
	query := "SELECT " + key.Column + " FROM " + t.quoted
	if lo != nil {
		query += " WHERE " + key.Column + " > " + b.Arg(lo)
	}
	query += " ORDER BY " + key.Column + " LIMIT 1 OFFSET " + strconv.Itoa(rows-1)
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	var v any
	err := q.QueryRowContext(ctx, query, b.Args()...).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	case v == nil:
		// A key is never NULL; if it were, the ranges would no longer cover the table.
		return nil, errNullScanKey
	}
	if raw, ok := v.([]byte); ok {
		// Bound again as text, which the column's collation compares.
		v = string(raw)
	}
	return v, nil
}

// pagedBatches splits the table's pages into runs of about rows rows.
func pagedBatches(d Dialect, key *ScanKey, rows int, each func(scanBatch) error) error {
	per := max(int64(rows)/max(key.RowsPerPage, 1), 1)
	for start := int64(0); ; start += per {
		end := start + per
		last := end >= key.Pages
		b := NewBuilder(d)
		var cond string
		if start > 0 {
			cond = key.Column + " >= " + key.PageStart(b, start)
		}
		if !last {
			if cond != "" {
				cond += " AND "
			}
			cond += key.Column + " < " + key.PageStart(b, end)
		}
		if err := each(scanBatch{b: b, cond: cond}); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// scanKey asks the dialect for t's scan key; nil when it has none or the dialect cannot say.
func (s *Store) scanKey(ctx context.Context, q Querier, t *Table) (*ScanKey, error) {
	kr, ok := s.d.(KeyRanger)
	if !ok {
		return nil, nil
	}
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	return kr.ScanKey(ctx, q, t.Name)
}

// noScanKeyWarning tells that m is scanned in one statement, and what to create instead: an
// index that serves an email search, or a key to scan by.
func (s *Store) noScanKeyWarning(t *Table, m matchColumn) string {
	keys := "key to read it by in ranges"
	if kr, ok := s.d.(KeyRanger); ok {
		keys = kr.ScanKeys()
	}
	fix := "give the table a single-column primary key of integers or text"
	if ix, ok := s.d.(Indexer); ok && m.kind == normalize.Email {
		fix = "create an index that serves the search, " + ix.NormalizedIndexDDL(t.Name, m.col) + ", or " + fix
	}
	return fmt.Sprintf("column %s of table %s is searched in one statement that reads the whole table: the table has no %s to read it in batches of %d rows; %s",
		m.col.Name, t.Name, keys, s.opts.ScanBatchRows, fix)
}
