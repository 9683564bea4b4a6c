package sqlstore

import (
	"context"
	"database/sql"
	"errors"
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
