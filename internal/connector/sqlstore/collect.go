package sqlstore

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Collect returns every row the mapping attributes to the subject, retained tables included.
func (s *Store) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	const op = "collect"
	ids := req.AllValues()
	tables, err := s.resolvePooled(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer func() { _ = tx.Rollback() }()
	if tables, err = s.bindAll(ctx, tx, tables, ids); err != nil {
		return nil, s.fail(op, err, req)
	}
	out := &connector.Collection{Records: []connector.Record{}}
	for _, t := range tables {
		q, ok := t.SelectQuery(ids)
		if !ok {
			continue
		}
		records, err := s.collectTable(ctx, tx, t, q)
		if err != nil {
			return nil, s.failAt(op, t.Location(), err, req)
		}
		out.Records = append(out.Records, records...)
	}
	return out, nil
}

func (s *Store) collectTable(ctx context.Context, q Querier, t *Table, query Query) ([]connector.Record, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	rows, err := q.QueryContext(ctx, query.SQL, query.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var records []connector.Record
	values := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		data := make(map[string]any, len(names))
		for i, n := range names {
			data[n] = JSONValue(values[i])
		}
		records = append(records, connector.Record{Location: t.Location(), Data: data})
	}
	return records, rows.Err()
}
