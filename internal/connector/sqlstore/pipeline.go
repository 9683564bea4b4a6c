package sqlstore

import (
	"context"
	"database/sql"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Pipeliner is a Dialect that can send a transaction's statements to the server together, in one
// round trip (PostgreSQL's extended protocol pipelines them up to one Sync, which makes them one
// implicit transaction).
type Pipeliner interface {
	// ExecAtomic runs queries in order as one transaction and returns the rows each changed. When
	// one fails nothing is changed; failed is its index, or -1 when no statement is to blame (the
	// connection).
	ExecAtomic(ctx context.Context, db *sql.DB, queries []Query) (changed []int64, failed int, err error)
}

// erasePipelined is the erasure of a request its plan sized to fit one transaction, on a dialect
// that pipelines: the spellings, the retained and shared counts are read first, as Verify reads
// (statement by statement, in a snapshot where a column is searched in batches; PostgreSQL's
// default transaction reads committed data per statement too), then every change goes in one
// round trip instead of BEGIN, a statement per table and COMMIT, each waiting for the one before.
func (s *Store) erasePipelined(ctx context.Context, p Pipeliner, req connector.Request, tables []*Table, fks []ForeignKey, ids connector.Values) (*connector.EraseResult, error) {
	const op = "erase"
	q, done, err := s.reader(ctx, tables)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer done()
	tables, err = s.bindAllFrom(ctx, q, tables, withShared(ids, req.Shared), s.memo.take(req.ID))
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	res, work, _, err := s.countWork(ctx, op, q, tables, fks, req, ids, true)
	if err != nil || len(work) == 0 {
		return res, err
	}
	// The changes take a connection of their own: a read snapshot still held here could leave a
	// small pool with every connection waiting for a second one.
	done()
	queries := make([]Query, 0, len(work))
	changes := make([]*Table, 0, len(work))
	for _, w := range work {
		query, ok := s.changeQuery(w.table, ids, 0)
		if !ok {
			continue
		}
		if s.opts.OnStatement != nil {
			s.opts.OnStatement(query.SQL)
		}
		queries, changes = append(queries, query), append(changes, w.table)
	}
	res.Erased, res.Masked = 0, 0
	if len(queries) == 0 {
		return res, nil
	}
	stmtCtx, cancel := s.stmtCtx(ctx)
	defer cancel()
	changed, failed, err := p.ExecAtomic(stmtCtx, s.db, queries)
	if err != nil {
		var location connector.Location
		if failed >= 0 && failed < len(changes) {
			location = changes[failed].Location()
		}
		return nil, s.failAt(op, location, err, req)
	}
	for i, t := range changes {
		addDone(res, t, changed[i])
		// The transaction has committed: a hook that interrupts here interrupts nothing.
		if s.opts.AfterBatch != nil {
			s.opts.AfterBatch(t.Location())
		}
	}
	return res, nil
}
