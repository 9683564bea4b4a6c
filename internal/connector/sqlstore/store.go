package sqlstore

import (
	"context"
	"database/sql"
	"errors"
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
	// memo hands a deletion's spellings from its derivation to its erasure (memo.go).
	memo spellingMemo
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

// resolve returns the mapped tables, from the catalog unless read within CatalogTTL, reading
// one table after another on q (which may be a transaction). A table or column added meanwhile
// is seen by deep verification only when that time is up.
func (s *Store) resolve(ctx context.Context, q Querier) ([]*Table, error) {
	return s.resolveWith(ctx, q, 1)
}

// resolvePooled is resolve on the pool, several tables at once; see resolveLinked.
func (s *Store) resolvePooled(ctx context.Context) ([]*Table, error) {
	return s.resolveWith(ctx, s.observed(s.db), s.opts.MaxOpenConns)
}

// resolveWith is resolve with at most readers catalog reads at once.
func (s *Store) resolveWith(ctx context.Context, q Querier, readers int) ([]*Table, error) {
	if s.opts.CatalogTTL > 0 {
		if tables := s.catalog.get(time.Now()); tables != nil {
			return tables, nil
		}
	}
	start := time.Now()
	tables, err := s.resolveFromCatalog(ctx, q, readers)
	if err == nil && s.opts.CatalogTTL > 0 {
		s.catalog.set(tables, start.Add(s.opts.CatalogTTL))
	}
	return tables, err
}

// resolveFromCatalog reads the catalog for every mapped table, up to readers tables at once (q
// must then be the pool, never a transaction: one connection cannot run statements at once).
// Reading one table after another costs a round trip each and, on MariaDB, milliseconds of
// information_schema. Any missing table or column fails the whole operation: acting on part of a
// mapping would report a partial erasure as complete.
func (s *Store) resolveFromCatalog(ctx context.Context, q Querier, readers int) ([]*Table, error) {
	type resolved struct {
		table    *Table
		problems []string
		err      error
	}
	out := make([]resolved, len(s.tables))
	read := func(q Querier, i int) {
		t, problems, err := s.resolveTable(ctx, q, s.tables[i])
		out[i] = resolved{table: t, problems: problems, err: err}
	}
	if readers <= 1 {
		for i := range s.tables {
			read(q, i)
		}
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, readers)
		for i := range s.tables {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				read(q, i)
			}()
		}
		wg.Wait()
	}
	tables := make([]*Table, 0, len(s.tables))
	var problems []string
	for _, r := range out {
		if r.err != nil {
			return nil, r.err
		}
		problems = append(problems, r.problems...)
		if r.table != nil {
			tables = append(tables, r.table)
		}
	}
	if len(problems) > 0 {
		return nil, &MappingError{Problems: problems}
	}
	linkTables(tables)
	return tables, nil
}

// resolveTable reads one mapping's table from the catalog: the table, or what is wrong with the
// mapping, or the error of reading.
func (s *Store) resolveTable(ctx context.Context, q Querier, m privacyv1alpha1.TableMapping) (*Table, []string, error) {
	name, err := ParseTableName(m.Name)
	if err != nil {
		return nil, []string{err.Error()}, nil //nolint:nilerr // a bad name is a problem of the mapping, reported as such, not a failure to read
	}
	cols, err := s.columns(ctx, q, name)
	if err != nil {
		return nil, nil, err
	}
	t, err := NewTable(s.d, m, cols)
	if err != nil {
		var me *MappingError
		if !errors.As(err, &me) {
			return nil, nil, err
		}
		return nil, me.Problems, nil
	}
	if err := s.planSearches(ctx, q, t); err != nil {
		return nil, nil, err
	}
	if err := s.readUnique(ctx, q, t); err != nil {
		return nil, nil, err
	}
	return t, nil, nil
}

// resolveLinked is resolvePooled, and for a linked mapping also the catalog's foreign keys
// (nil for a plain mapping), read while the tables are. Operations call it before they open
// their transaction: a statement on the pool then never waits for a connection while its
// operation holds another, so many operations at once cannot starve the pool.
func (s *Store) resolveLinked(ctx context.Context) ([]*Table, []ForeignKey, error) {
	if !s.linked() {
		tables, err := s.resolvePooled(ctx)
		return tables, nil, err
	}
	var fks []ForeignKey
	var fkErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		fks, fkErr = s.foreignKeys(ctx, s.observed(s.db))
	}()
	tables, err := s.resolvePooled(ctx)
	<-done
	if err != nil {
		return nil, nil, err
	}
	return tables, fks, fkErr
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

// reader is what Verify and Derive read through. Without a batched scan it is the pool itself,
// with no transaction: each of their statements is consistent on its own, and a snapshot across
// them would prove nothing more (a row written after their last statement is missed either way,
// and the erasure, its verification and every re-verification read again), while BEGIN and
// COMMIT, and MariaDB's SET TRANSACTION, were a third of their round trips. A table searched in
// batches (scan.go) needs the snapshot: an UPDATE could move a row from a batch not yet read to
// one already read. done ends the transaction, if any.
func (s *Store) reader(ctx context.Context, tables []*Table) (q Querier, done func(), err error) {
	for _, t := range tables {
		for _, m := range t.match {
			if m.scannedInBatches() {
				tx, err := s.readTx(ctx)
				if err != nil {
					return nil, nil, err
				}
				return s.observed(tx), func() { _ = tx.Rollback() }, nil
			}
		}
	}
	return s.observed(s.db), func() {}, nil
}

// readTx is a consistent, read-only view for collect (an export must agree with itself) and dry
// runs (a plan counts what one erasure transaction would change).
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	return s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
}
