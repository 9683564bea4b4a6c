package sqlstore

import (
	"context"
	"errors"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Collect returns every row the mapping attributes to the subject, retained tables included.
func (s *Store) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	return connector.CollectAll(ctx, s, req)
}

// CollectTo hands every row the mapping attributes to the subject to emit as it is read, table by
// table: nothing is held beyond the row at hand (connector.CollectStreamer).
func (s *Store) CollectTo(ctx context.Context, req connector.Request, emit func(connector.Record) error) (bool, error) {
	const op = "collect"
	ids := req.AllValues()
	tables, err := s.resolvePooled(ctx)
	if err != nil {
		return false, s.fail(op, err, req)
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return false, s.fail(op, err, req)
	}
	defer func() { _ = tx.Rollback() }()
	if tables, err = s.bindAll(ctx, tx, tables, ids); err != nil {
		return false, s.fail(op, err, req)
	}
	for _, t := range tables {
		q, ok := t.SelectQuery(ids)
		if !ok {
			continue
		}
		if err := s.collectTable(ctx, tx, t, q, emit); err != nil {
			var ee *emitError
			if errors.As(err, &ee) {
				return false, ee.err // the caller's own error, not the store's
			}
			return false, s.failAt(op, t.Location(), err, req)
		}
	}
	return false, nil
}

// emitError carries an error of the caller's emit through collectTable.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

func (s *Store) collectTable(ctx context.Context, q Querier, t *Table, query Query, emit func(connector.Record) error) error {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	rows, err := q.QueryContext(ctx, query.SQL, query.Args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return err
	}
	values := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		data := make(map[string]any, len(names))
		for i, n := range names {
			data[n] = JSONValue(values[i])
		}
		if err := emit(connector.Record{Location: t.Location(), Data: data}); err != nil {
			return &emitError{err}
		}
	}
	return rows.Err()
}
