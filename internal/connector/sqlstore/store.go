package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// DefaultTimeout bounds each statement when the spec sets no connection timeout.
const DefaultTimeout = 30 * time.Second

// Store is the connector.Client of every SQL dialect.
type Store struct {
	d       Dialect
	db      *sql.DB
	tables  []privacyv1alpha1.TableMapping
	salt    []byte
	opts    Options
	timeout time.Duration
	catalog catalogCache
	// norm compares the values of normalised match columns (see match.go).
	norm normalize.Normalizer
	// deepScope says whether deep verification also searches outside the mapping (unmapped.go).
	deepScope privacyv1alpha1.DeepScope
}

// catalogCache holds the mapped tables as last resolved. Reading the catalog is most of what a
// small erasure costs the database (MariaDB's information_schema especially), and a request
// reads it three times (plan, erase, verify).
type catalogCache struct {
	mu     sync.Mutex
	tables []*Table
	until  time.Time
	// fks are the catalog's foreign keys, read for every derive and erase of a linked mapping
	// (110-170 ms a read on MariaDB): cached for the same time and forgotten with the tables.
	fks      []ForeignKey
	fksUntil time.Time
}

func (c *catalogCache) get(now time.Time) []*Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tables == nil || !now.Before(c.until) {
		return nil
	}
	return c.tables
}

func (c *catalogCache) set(tables []*Table, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables, c.until = tables, until
}

func (c *catalogCache) getForeignKeys(now time.Time) ([]ForeignKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !now.Before(c.fksUntil) {
		return nil, false
	}
	return c.fks, true
}

func (c *catalogCache) setForeignKeys(fks []ForeignKey, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fks, c.fksUntil = fks, until
}

func (c *catalogCache) forget() {
	c.set(nil, time.Time{})
	c.setForeignKeys(nil, time.Time{})
}

var _ connector.Client = (*Store)(nil)

// stmtCtx bounds one statement (or one catalog lookup) by the connection timeout. Whole
// operations are not bounded by it: a large erasure is many statements, each of which must be
// quick, and the caller's ctx bounds the total.
func (s *Store) stmtCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) fail(op string, err error, req connector.Request) error {
	return s.failAt(op, "", err, req)
}

// failAt is fail for a failure at one table.
func (s *Store) failAt(op string, location connector.Location, err error, req connector.Request) error {
	// The schema may have changed under the cached tables: the retry reads the catalog again and
	// reports a missing column as a mapping problem rather than the statement's error.
	s.catalog.forget()
	return classify(s.d, op, location, err, req.ScrubAll)
}

// Close releases the pool.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	return s.db.PingContext(ctx)
}

func (s *Store) columns(ctx context.Context, q Querier, name TableName) ([]Column, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	return s.d.Columns(ctx, q, name)
}

// resolve returns the mapped tables, from the catalog unless read within CatalogTTL. A table or
// column added meanwhile is seen by deep verification only when that time is up.
func (s *Store) resolve(ctx context.Context, q Querier) ([]*Table, error) {
	if s.opts.CatalogTTL > 0 {
		if tables := s.catalog.get(time.Now()); tables != nil {
			return tables, nil
		}
	}
	start := time.Now()
	tables, err := s.resolveFromCatalog(ctx, q)
	if err == nil && s.opts.CatalogTTL > 0 {
		s.catalog.set(tables, start.Add(s.opts.CatalogTTL))
	}
	return tables, err
}

// resolveFromCatalog reads the catalog for every mapped table. Any missing table or column fails
// the whole operation: acting on part of a mapping would report a partial erasure as complete.
func (s *Store) resolveFromCatalog(ctx context.Context, q Querier) ([]*Table, error) {
	tables := make([]*Table, 0, len(s.tables))
	var problems []string
	for _, m := range s.tables {
		name, err := ParseTableName(m.Name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		cols, err := s.columns(ctx, q, name)
		if err != nil {
			return nil, err
		}
		t, err := NewTable(s.d, m, cols)
		if err != nil {
			var me *MappingError
			if !errors.As(err, &me) {
				return nil, err
			}
			problems = append(problems, me.Problems...)
			continue
		}
		if err := s.planSearches(ctx, q, t); err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	if len(problems) > 0 {
		return nil, &MappingError{Problems: problems}
	}
	linkTables(tables)
	return tables, nil
}

func (s *Store) count(ctx context.Context, q Querier, query Query) (int64, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	var n int64
	err := q.QueryRowContext(ctx, query.SQL, query.Args...).Scan(&n)
	return n, err
}

func (s *Store) exec(ctx context.Context, q Querier, query Query) (int64, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	res, err := q.ExecContext(ctx, query.SQL, query.Args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// readTx is a consistent, read-only view for verify, collect and dry runs.
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	return s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
}

// Check pings the store and checks every mapped table and column against the catalog.
func (s *Store) Check(ctx context.Context) (*connector.CheckResult, error) {
	const op = "check"
	if err := s.ping(ctx); err != nil {
		return nil, s.fail(op, err, connector.Request{})
	}
	// Check always reads the catalog, foreign keys included.
	s.catalog.setForeignKeys(nil, time.Time{})
	var problems, warnings []string
	var checked []*Table
	for _, m := range s.tables {
		name, err := ParseTableName(m.Name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		cols, err := s.columns(ctx, s.db, name)
		if err != nil {
			return nil, s.failAt(op, name.String(), err, connector.Request{})
		}
		t, err := NewTable(s.d, m, cols)
		if err != nil {
			var me *MappingError
			if !errors.As(err, &me) {
				return nil, s.failAt(op, name.String(), err, connector.Request{})
			}
			problems = append(problems, me.Problems...)
			continue
		}
		w, err := s.indexWarnings(ctx, t)
		if err == nil {
			err = s.planSearches(ctx, s.db, t)
		}
		if err != nil {
			return nil, s.failAt(op, t.Location(), err, connector.Request{})
		}
		warnings = append(warnings, w...)
		warnings = append(warnings, s.searchWarnings(t)...)
		checked = append(checked, t)
	}
	if len(problems) > 0 {
		return nil, s.fail(op, &MappingError{Problems: problems}, connector.Request{})
	}
	w, err := s.linkWarnings(ctx, checked)
	if err != nil {
		return nil, s.fail(op, err, connector.Request{})
	}
	deepWarnings, err := s.unmappedWarnings(ctx)
	if err != nil {
		return nil, s.fail(op, err, connector.Request{})
	}
	w = append(w, deepWarnings...)
	return &connector.CheckResult{Warnings: append(warnings, w...)}, nil
}

func (s *Store) indexWarnings(ctx context.Context, t *Table) ([]string, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	indexed, err := s.d.IndexedColumns(ctx, s.db, t.Name)
	if err != nil {
		return nil, err
	}
	leading := map[string]bool{}
	for _, c := range indexed {
		leading[foldName(s.d, c)] = true
	}
	var warnings []string
	warned := map[string]bool{}
	for _, m := range t.match {
		key := foldName(s.d, m.col.Name)
		if leading[key] || warned[key] {
			continue
		}
		warned[key] = true
		warnings = append(warnings, fmt.Sprintf("column %s of table %s has no index: erasure scans the table", m.col.Name, t.Name))
	}
	return warnings, nil
}

// Collect returns every row the mapping attributes to the subject, retained tables included.
func (s *Store) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	const op = "collect"
	ids := req.AllValues()
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer func() { _ = tx.Rollback() }()
	tables, err := s.resolve(ctx, tx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
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

// tableWork is what an erasure has to do in one table, counted before doing it.
type tableWork struct {
	table *Table
	count int64
}

// Erase deletes and masks the subject's rows and counts the retained ones.
//
// It first counts, in one transaction, the rows each table still has to change. When that total
// is at most Options.MaxAtomicRows the changes are made in that same transaction, so a crash or
// outage leaves the store exactly as it was. Above it, every batch of Options.BatchSize rows is
// its own transaction: a big subject never holds its locks for the whole erasure, at the price
// that an interruption leaves some batches done. Each batch deletes or fully masks whole rows,
// and every statement only targets rows still matching and not yet masked, so calling Erase
// again finishes the job.
func (s *Store) Erase(ctx context.Context, req connector.Request) (*connector.EraseResult, error) {
	const op = "erase"
	ids := req.AllValues()
	var tx *sql.Tx
	var err error
	if req.DryRun {
		tx, err = s.readTx(ctx)
	} else {
		tx, err = s.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer func() { _ = tx.Rollback() }()
	tables, err := s.resolve(ctx, tx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	tables, fks, err := s.linkedErase(ctx, tx, tables)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	if tables, err = s.bindAll(ctx, tx, tables, withShared(ids, req.Shared)); err != nil {
		return nil, s.fail(op, err, req)
	}

	res := &connector.EraseResult{}
	var work []tableWork
	var total int64
	for _, t := range tables {
		q, ok := t.CountQuery(ids)
		if !ok {
			continue
		}
		n, err := s.count(ctx, tx, q)
		if err != nil {
			return nil, s.failAt(op, t.Location(), err, req)
		}
		if n == 0 {
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
	if err := s.linkedPlan(ctx, tx, tables, fks, work, req, res); err != nil {
		return nil, s.fail(op, err, req)
	}
	if req.DryRun || len(work) == 0 {
		return res, nil
	}

	res.Erased, res.Masked = 0, 0
	if total <= s.opts.MaxAtomicRows {
		for _, w := range work {
			n, err := s.apply(ctx, w, ids, func(q Query) (int64, error) { return s.exec(ctx, tx, q) })
			if err != nil {
				return nil, s.failAt(op, w.table.Location(), err, req)
			}
			addDone(res, w.table, n)
		}
		if err := tx.Commit(); err != nil {
			return nil, s.fail(op, err, req)
		}
		return res, nil
	}

	_ = tx.Rollback()
	for _, w := range work {
		n, err := s.apply(ctx, w, ids, func(q Query) (int64, error) { return s.execInOwnTx(ctx, q) })
		addDone(res, w.table, n)
		if err != nil {
			return nil, s.failAt(op, w.table.Location(), err, req)
		}
	}
	return res, nil
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

func (s *Store) execInOwnTx(ctx context.Context, q Query) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	n, err := s.exec(ctx, tx, q)
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
		var q Query
		var ok bool
		if w.table.Mapping.Action == privacyv1alpha1.ActionMask {
			q, ok = w.table.MaskQuery(ids, s.salt, limit)
		} else {
			q, ok = w.table.DeleteQuery(ids, limit)
		}
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

// Verify counts what still identifies the subject where the mapping says it must not:
//   - delete tables: every matching row;
//   - mask tables: every matching row in which some masked column is not in its masked state
//     (NULL for every strategy, the marker for redact, 64 lower-case hex digits for hash). A
//     row still matching through a match column the mapping does not mask is the intended
//     result of masking, not a remainder;
//   - retain tables: matching rows count as retained, never as remaining.
//
// With req.Deep it also searches the searchable columns of delete and mask tables (except the
// match columns a mask table keeps) for any row equal to or containing an identifier value, and
// reports them under "table (deep: column)". With deepScope database it then searches the rest of
// the database and reports copies there as unmapped (unmapped.go).
func (s *Store) Verify(ctx context.Context, req connector.Request) (*connector.VerifyResult, error) {
	const op = "verify"
	ids := req.AllValues()
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	defer func() { _ = tx.Rollback() }()
	tables, err := s.resolve(ctx, tx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	if tables, err = s.bindAll(ctx, tx, tables, withShared(ids, req.Shared)); err != nil {
		return nil, s.fail(op, err, req)
	}
	res := &connector.VerifyResult{}
	for _, t := range tables {
		q, ok := t.CountQuery(ids)
		if !ok {
			continue
		}
		n, err := s.count(ctx, tx, q)
		if err != nil {
			return nil, s.failAt(op, t.Location(), err, req)
		}
		if n == 0 {
			continue
		}
		loc := connector.LocationCount{Location: t.Location(), Records: n}
		if t.Mapping.Action == privacyv1alpha1.ActionRetain {
			loc.Reason = t.Mapping.RetainReason
			res.Retained += n
			res.RetainedLocations = append(res.RetainedLocations, loc)
		} else {
			res.Remaining += n
			res.RemainingLocations = append(res.RemainingLocations, loc)
		}
	}
	if res.Shared, res.SharedLocations, err = s.countShared(ctx, tx, tables, ids, req.Shared); err != nil {
		return nil, s.fail(op, err, req)
	}
	if req.Deep {
		search := s.deepSearchFor(tables, ids)
		for _, t := range tables {
			if t.Mapping.Action == privacyv1alpha1.ActionRetain {
				continue
			}
			found, err := s.deep(ctx, tx, t, search)
			if err != nil {
				return nil, s.failAt(op, t.Location(), err, req)
			}
			for _, loc := range found {
				res.Remaining += loc.Records
				res.RemainingLocations = append(res.RemainingLocations, loc)
			}
		}
		if s.searchesDatabase() {
			if res.Unmapped, res.UnmappedLocations, err = s.searchUnmapped(ctx, tables, ids); err != nil {
				return nil, s.fail(op, err, req)
			}
		}
	}
	return res, nil
}

func (s *Store) deep(ctx context.Context, q Querier, t *Table, search deepSearch) ([]connector.LocationCount, error) {
	query, cols, ok := t.DeepQuery(search.values, search.foldedValues)
	if !ok {
		return nil, nil
	}
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	counts := make([]int64, len(cols))
	ptrs := make([]any, len(cols))
	for i := range counts {
		ptrs[i] = &counts[i]
	}
	if err := q.QueryRowContext(ctx, query.SQL, query.Args...).Scan(ptrs...); err != nil {
		return nil, err
	}
	var found []connector.LocationCount
	for i, c := range cols {
		if counts[i] > 0 {
			found = append(found, connector.LocationCount{Location: t.DeepLocation(c.Name), Records: counts[i]})
		}
	}
	sort.Slice(found, func(i, j int) bool { return strings.Compare(found[i].Location, found[j].Location) < 0 })
	return found, nil
}
