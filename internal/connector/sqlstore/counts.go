package sqlstore

import (
	"context"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Counting the subject's rows of several tables takes one statement, not one per table: a plan
// and a verification count every mapped table, and on MySQL/MariaDB, whose statements are
// prepared on the server, each statement costs two round trips. A statement never binds more than
// maxCountArgs values (well under every engine's limit on parameters).
const (
	maxCountArgs   = 8192
	maxCountTables = 32
)

// countTables counts, per table, the rows CountQuery(ids) would count; -1 for a table that cannot
// hold the subject's rows. A failing statement is reported at the tables it counted (retrying
// them one by one would not work in a PostgreSQL transaction, which the failure aborts).
func (s *Store) countTables(ctx context.Context, q Querier, tables []*Table, ids connector.Values) (counts []int64, location connector.Location, err error) {
	counts = make([]int64, len(tables))
	var batch []int
	var parts []string
	b := NewBuilder(s.d)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.countBatch(ctx, q, b.query("SELECT "+strings.Join(parts, ", ")), batch, counts); err != nil {
			names := make([]string, len(batch))
			for k, i := range batch {
				names[k] = tables[i].Location()
			}
			location = strings.Join(names, ", ")
			return err
		}
		batch, parts, b = batch[:0], parts[:0], NewBuilder(s.d)
		return nil
	}
	for i, t := range tables {
		next := NewBuilder(s.d)
		next.args = b.args
		cond, ok := t.targetCond(next, ids)
		if !ok {
			counts[i] = -1
			continue
		}
		if len(batch) > 0 && (len(next.args) > maxCountArgs || len(batch) == maxCountTables) {
			if err := flush(); err != nil {
				return nil, location, err
			}
			// The table's condition again, in a fresh statement whose placeholders count from 1.
			next = NewBuilder(s.d)
			cond, _ = t.targetCond(next, ids)
		}
		b = next
		batch = append(batch, i)
		parts = append(parts, "(SELECT COUNT(*) FROM "+t.quoted+" WHERE "+cond+")")
	}
	if err := flush(); err != nil {
		return nil, location, err
	}
	return counts, "", nil
}

// countBatch runs one combined count and spreads its columns over counts.
func (s *Store) countBatch(ctx context.Context, q Querier, query Query, batch []int, counts []int64) error {
	got, err := s.countRow(ctx, q, query, len(batch))
	if err != nil {
		return err
	}
	for k, i := range batch {
		counts[i] = got[k]
	}
	return nil
}

// countRow runs query, whose one row is n counts, and returns them.
func (s *Store) countRow(ctx context.Context, q Querier, query Query, n int) ([]int64, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	got := make([]int64, n)
	dest := make([]any, n)
	for k := range got {
		dest[k] = &got[k]
	}
	if err := q.QueryRowContext(ctx, query.SQL, query.Args...).Scan(dest...); err != nil {
		return nil, err
	}
	return got, nil
}
