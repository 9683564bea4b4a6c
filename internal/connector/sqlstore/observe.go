package sqlstore

import (
	"context"
	"database/sql"
)

// observed is q, seen by Options.OnStatement when it is set: tests count the statements an
// operation sends, so that a return to one statement per batch or per value fails them.
func (s *Store) observed(q Querier) Querier {
	if s.opts.OnStatement == nil {
		return q
	}
	return observedQuerier{q: q, on: s.opts.OnStatement}
}

type observedQuerier struct {
	q  Querier
	on func(query string)
}

func (o observedQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	o.on(query)
	return o.q.ExecContext(ctx, query, args...)
}

func (o observedQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	o.on(query)
	return o.q.QueryContext(ctx, query, args...)
}

func (o observedQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	o.on(query)
	return o.q.QueryRowContext(ctx, query, args...)
}
