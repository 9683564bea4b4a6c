package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Check pings the store and checks every mapped table and column against the catalog.
func (s *Store) Check(ctx context.Context) (*connector.CheckResult, error) {
	const op = "check"
	if err := s.ping(ctx); err != nil {
		return nil, s.fail(op, err, connector.Request{})
	}
	// Check always reads the catalog, foreign keys included, and leaves what it read for the
	// operations that follow: the first request after a store is (re)checked would otherwise
	// read it all again (tens of milliseconds of information_schema on MariaDB).
	s.catalog.setForeignKeys(nil, time.Time{})
	start := time.Now()
	var problems, warnings []string
	var checked []*Table
	for _, m := range s.tables {
		t, tableProblems, err := s.resolveTable(ctx, s.db, m)
		if err != nil {
			return nil, s.failAt(op, m.Name, err, connector.Request{})
		}
		problems = append(problems, tableProblems...)
		if t == nil {
			continue
		}
		w, err := s.indexWarnings(ctx, t)
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
	if s.opts.CatalogTTL > 0 {
		linkTables(checked)
		s.catalog.set(checked, start.Add(s.opts.CatalogTTL))
	}
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
