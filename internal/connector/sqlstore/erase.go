package sqlstore

import (
	"context"
	"database/sql"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// tableWork is what an erasure has to do in one table, counted before doing it (-1: not
// counted, the plan sized the erasure).
type tableWork struct {
	table *Table
	count int64
}

// Erase deletes and masks the subject's rows and counts the retained ones.
//
// It first counts, in one transaction, the rows each table still has to change (unless the
// request's plan already counted at most Options.MaxAtomicRows). When that total
// is at most Options.MaxAtomicRows the changes are made in that same transaction, one statement
// per table (the count bounds its rows, and batching inside one transaction would only multiply
// statements), so a crash or outage leaves the store exactly as it was. Above it, every batch of
// Options.BatchSize rows is
// its own transaction: a big subject never holds its locks for the whole erasure, at the price
// that an interruption leaves some batches done. Each batch deletes or fully masks whole rows,
// and every statement only targets rows still matching and not yet masked, so calling Erase
// again finishes the job. On a dialect that pipelines (PostgreSQL), an erasure its plan sized
// sends its changes in one round trip instead (pipeline.go).
func (s *Store) Erase(ctx context.Context, req connector.Request) (*connector.EraseResult, error) {
	const op = "erase"
	ids := req.AllValues()
	tables, fks, err := s.resolveLinked(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	tables = linkedErase(s.d, tables, fks)
	// A plan that fits one transaction needs no second count: every statement reports the rows it
	// changed. Retained rows are still counted, since nothing else reports them.
	planned := !req.DryRun && req.Planned != nil && *req.Planned <= s.opts.MaxAtomicRows
	if p, ok := s.d.(Pipeliner); ok && planned {
		return s.erasePipelined(ctx, p, req, tables, fks, ids)
	}
	var sqlTx *sql.Tx
	if req.DryRun {
		sqlTx, err = s.readTx(ctx)
	} else {
		sqlTx, err = s.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer func() { _ = sqlTx.Rollback() }()
	tx := s.observed(sqlTx)
	var memo spellings
	if !req.DryRun {
		memo = s.memo.take(req.ID)
	}
	if tables, err = s.bindAllFrom(ctx, tx, tables, withShared(ids, req.Shared), memo); err != nil {
		return nil, s.fail(op, err, req)
	}

	res, work, total, err := s.countWork(ctx, op, tx, tables, fks, req, ids, planned)
	if err != nil {
		return nil, err
	}
	if req.DryRun {
		// A dry run is how a deletion is planned: its erasure follows.
		s.memo.put(req.ID, spellingsOf(tables))
	}
	if req.DryRun || len(work) == 0 {
		return res, nil
	}

	res.Erased, res.Masked = 0, 0
	if planned || total <= s.opts.MaxAtomicRows {
		for _, w := range work {
			n, err := s.applyAll(ctx, tx, w, ids)
			if err != nil {
				return nil, s.failAt(op, w.table.Location(), err, req)
			}
			addDone(res, w.table, n)
		}
		if err := sqlTx.Commit(); err != nil {
			return nil, s.fail(op, err, req)
		}
		return res, nil
	}

	_ = sqlTx.Rollback()
	for _, w := range work {
		n, err := s.apply(ctx, w, ids, func(q Query) (int64, error) { return s.execInOwnTx(ctx, q) })
		addDone(res, w.table, n)
		if err != nil {
			return nil, s.failAt(op, w.table.Location(), err, req)
		}
	}
	return res, nil
}

// countWork counts, on tx, what an erasure of req, whose values are ids (req.AllValues, computed
// once by the caller: a subject's thousands of derived values are sorted only once), has to do in
// each of tables (bound and in erase order), and completes the plan for linked data
// (linkedPlan). With sized it counts only the retained rows and lists every delete and mask table
// as work, uncounted. Its errors are those of the operation op.
func (s *Store) countWork(ctx context.Context, op string, tx Querier, tables []*Table, fks []ForeignKey, req connector.Request, ids connector.Values, sized bool) (*connector.EraseResult, []tableWork, int64, error) {
	res := &connector.EraseResult{}
	var work []tableWork
	var total int64
	counted := tables
	if sized {
		counted = nil
		for _, t := range tables {
			if t.Mapping.Action == privacyv1alpha1.ActionRetain {
				counted = append(counted, t)
			} else {
				work = append(work, tableWork{table: t, count: -1})
			}
		}
	}
	counts, location, err := s.countTables(ctx, tx, counted, ids)
	if err != nil {
		return nil, nil, 0, s.failAt(op, location, err, req)
	}
	for k, t := range counted {
		n := counts[k]
		if n <= 0 {
			continue
		}
		switch t.Mapping.Action {
		case privacyv1alpha1.ActionRetain:
			res.Retained += n
			res.RetainedLocations = append(res.RetainedLocations,
				connector.LocationCount{Location: t.Location(), Records: n, Reason: t.Mapping.RetainReason})
		case privacyv1alpha1.ActionDelete:
			res.Erased += n
			work = append(work, tableWork{table: t, count: n})
			total += n
		case privacyv1alpha1.ActionMask:
			res.Masked += n
			work = append(work, tableWork{table: t, count: n})
			total += n
		}
	}
	if err := s.linkedPlan(ctx, tx, tables, fks, work, ids, req.Shared, res); err != nil {
		return nil, nil, 0, s.fail(op, err, req)
	}
	return res, work, total, nil
}

// withShared is ids and shared together: the spellings of shared values are needed to count
// (and leave alone) the rows reached through them.
func withShared(ids, shared connector.Values) connector.Values {
	if len(shared) == 0 {
		return ids
	}
	all := ids.Clone()
	all.Merge(shared)
	return all
}

// addDone counts n rows changed in t.
func addDone(res *connector.EraseResult, t *Table, n int64) {
	if t.Mapping.Action == privacyv1alpha1.ActionMask {
		res.Masked += n
	} else {
		res.Erased += n
	}
}

// changeQuery is the statement that deletes or masks at most limit (0: all) of the subject's rows
// in t, as its mapping says.
func (s *Store) changeQuery(t *Table, ids connector.Values, limit int) (Query, bool) {
	if t.Mapping.Action == privacyv1alpha1.ActionMask {
		return t.MaskQuery(ids, s.salt, limit)
	}
	return t.DeleteQuery(ids, limit)
}

// applyAll changes all of one table's rows in a single statement, inside the erasure's
// transaction.
func (s *Store) applyAll(ctx context.Context, tx Querier, w tableWork, ids connector.Values) (int64, error) {
	q, ok := s.changeQuery(w.table, ids, 0)
	if !ok {
		return 0, nil
	}
	n, err := s.exec(ctx, tx, q)
	if err != nil {
		return 0, err
	}
	if s.opts.AfterBatch != nil {
		s.opts.AfterBatch(w.table.Location())
	}
	return n, nil
}

func (s *Store) execInOwnTx(ctx context.Context, q Query) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	n, err := s.exec(ctx, s.observed(tx), q)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// apply runs one table's batches until a batch comes back short. The number of batches is capped
// a little above what the count predicted, so that a trigger undoing the mask cannot loop forever;
// whatever is left shows up in verify.
func (s *Store) apply(ctx context.Context, w tableWork, ids connector.Values, run func(Query) (int64, error)) (int64, error) {
	limit := s.opts.BatchSize
	maxBatches := w.count/int64(limit) + 10
	var done int64
	for batch := int64(0); batch < maxBatches; batch++ {
		q, ok := s.changeQuery(w.table, ids, limit)
		if !ok {
			return done, nil
		}
		n, err := run(q)
		if err != nil {
			return done, err
		}
		done += n
		if s.opts.AfterBatch != nil {
			s.opts.AfterBatch(w.table.Location())
		}
		if n < int64(limit) {
			return done, nil
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
	}
	return done, nil
}
