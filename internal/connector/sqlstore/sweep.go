package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

var _ connector.Sweeper = (*Store)(nil)

// sweptColumn is one mapped identifier column a sweep reads.
type sweptColumn struct {
	table    *Table
	col      matchColumn
	retained bool
}

// Sweep reads every distinct value of every mapped match column, a page at a time in the
// column's order (keyset pagination: each page starts after the last value of the previous one,
// so no page re-reads the table from its start and an index on the column serves every page),
// paced by opts.RowsPerSecond. A column mapped twice (a table listed with two actions) is read
// once per action, so a retained mapping's rows are reported as retained.
func (s *Store) Sweep(ctx context.Context, opts connector.SweepOptions, visit func(connector.SweepHit) error) (*connector.SweepStats, error) {
	const op = "sweep"
	tables, err := s.resolve(ctx, s.db)
	if err != nil {
		return nil, s.fail(op, err, connector.Request{})
	}
	var cols []sweptColumn
	seen := map[string]bool{}
	for _, t := range tables {
		retained := t.Mapping.Action == privacyv1alpha1.ActionRetain
		for _, m := range t.match {
			key := fmt.Sprintf("%s|%s|%s|%t", t.Location(), foldName(s.d, m.col.Name), m.identifier, retained)
			if seen[key] {
				continue
			}
			seen[key] = true
			cols = append(cols, sweptColumn{table: t, col: m, retained: retained})
		}
	}
	stats := &connector.SweepStats{}
	pacer := connector.NewPacer(opts.RowsPerSecond)
	for _, c := range cols {
		if err := s.sweepColumn(ctx, c, opts, pacer, stats, visit); err != nil {
			var ve visitError
			if errors.As(err, &ve) {
				return stats, ve.err
			}
			return stats, s.failAt(op, c.table.Location(), err, connector.Request{})
		}
	}
	return stats, nil
}

// visitError carries a failure of the caller's visit past the store's error classification.
type visitError struct{ err error }

func (e visitError) Error() string { return e.err.Error() }

func (s *Store) sweepColumn(ctx context.Context, c sweptColumn, opts connector.SweepOptions, pacer *connector.Pacer,
	stats *connector.SweepStats, visit func(connector.SweepHit) error) error {
	page := opts.PageSizeOrDefault()
	var last any
	for {
		b := NewBuilder(s.d)
		cond := c.col.quoted + " IS NOT NULL"
		if last != nil {
			cond += " AND " + c.col.quoted + " > " + b.Arg(last)
		}
		q := b.query(fmt.Sprintf("SELECT DISTINCT %s FROM %s WHERE %s ORDER BY %s LIMIT %d",
			c.col.quoted, c.table.quoted, cond, c.col.quoted, page))
		values, err := s.page(ctx, q)
		if err != nil {
			return err
		}
		for _, v := range values {
			stats.Scanned++
			text := sweepText(v)
			if opts.Match == nil || !opts.Match(c.col.identifier, c.col.kind, text) {
				continue
			}
			hit := connector.SweepHit{Location: c.table.Location(), Identifier: c.col.identifier,
				Kind: c.col.kind, Value: text, Retained: c.retained}
			if err := visit(hit); err != nil {
				return visitError{err}
			}
		}
		if len(values) < page {
			return nil
		}
		last = values[len(values)-1]
		if err := pacer.Wait(ctx, len(values)); err != nil {
			return err
		}
	}
}

// page runs one page query and returns its values as the driver scanned them, so that the last
// one can be bound again, in its own type, as the next page's start.
func (s *Store) page(ctx context.Context, q Query) ([]any, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []any
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// sweepText is a scanned value as the text a subject's identifier would be.
func sweepText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}
