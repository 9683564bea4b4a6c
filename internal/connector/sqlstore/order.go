package sqlstore

import (
	"context"
	"fmt"
	"slices"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// linked reports whether the mapping uses linked data (some table provides identifiers). Only
// then do erasures read the catalog's foreign keys: a plain mapping keeps its cost.
func (s *Store) linked() bool {
	for _, t := range s.tables {
		if len(t.Provides) > 0 {
			return true
		}
	}
	return false
}

// eraseOrder sorts the mapped tables so that a table whose rows reference another's (a foreign
// key) comes first: the database then accepts every delete in turn. Without foreign keys the
// database accepts any order and the mapping's order is kept; so it is among tables a cycle of
// keys joins, whose deletes only a deferred or cascading key lets through anyway.
func eraseOrder(d Dialect, tables []*Table, fks []ForeignKey) []*Table {
	// before[i] lists the tables that must come before table i: those referencing it.
	before := make([][]int, len(tables))
	for i, t := range tables {
		for j, u := range tables {
			if i == j || sameTable(d, t.Name, u.Name) {
				continue
			}
			for _, fk := range fks {
				if sameTable(d, fk.From, u.Name) && sameTable(d, fk.To, t.Name) && !slices.Contains(before[i], j) {
					before[i] = append(before[i], j)
				}
			}
		}
	}
	placed := make([]bool, len(tables))
	out := make([]*Table, 0, len(tables))
	for len(out) < len(tables) {
		progress := false
		for i := range tables {
			if placed[i] {
				continue
			}
			ready := true
			for _, j := range before[i] {
				ready = ready && placed[j]
			}
			if ready {
				placed[i] = true
				out = append(out, tables[i])
				progress = true
			}
		}
		if !progress {
			// A cycle of keys: keep the mapping's order for what is left.
			for i := range tables {
				if !placed[i] {
					placed[i] = true
					out = append(out, tables[i])
				}
			}
		}
	}
	return out
}

// blockedDelete returns a mapping error when a row the erasure deletes is still referenced, through
// a foreign key that refuses the delete, by a table the mapping does not cover: the database would
// refuse the erasure, or with the key unenforced (SQLite without PRAGMA foreign_keys) leave the
// other table pointing at nothing. It is checked before anything is changed.
func (s *Store) blockedDelete(ctx context.Context, q Querier, tables []*Table, fks []ForeignKey, work []tableWork, ids connector.Values) error {
	for _, w := range work {
		t := w.table
		if t.Mapping.Action != privacyv1alpha1.ActionDelete {
			continue
		}
		for _, fk := range fks {
			if !fk.Blocks || !sameTable(s.d, fk.To, t.Name) || mapped(s.d, tables, fk.From) {
				continue
			}
			query, ok, err := t.referencedQuery(fk, ids)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			n, err := s.count(ctx, q, query)
			if err != nil {
				return err
			}
			if n > 0 {
				return connector.Errorf(connector.KindMapping, "erase",
					"foreign key %s of table %s references %d rows of table %s that the mapping deletes, and the mapping does not cover table %s: map it (delete, mask or retain) or change the key; nothing was changed",
					fk.Name, fk.From, n, t.Name, fk.From)
			}
		}
	}
	return nil
}

// referencedQuery counts the rows of fk's referencing table that point at rows t deletes.
func (t *Table) referencedQuery(fk ForeignKey, ids connector.Values) (Query, bool, error) {
	from, err := QuoteTable(t.d, fk.From)
	if err != nil {
		return Query{}, false, err
	}
	b := NewBuilder(t.d)
	cond, ok := t.targetCond(b, ids)
	if !ok {
		return Query{}, false, nil
	}
	sql := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s)",
		from, t.d.QuoteIdent(fk.FromColumn), t.d.QuoteIdent(fk.ToColumn), t.quoted, cond)
	return b.query(sql), true, nil
}

// linkedErase puts the tables of a linked mapping in erase order; a plain mapping (no keys)
// comes back as it is.
func linkedErase(d Dialect, tables []*Table, fks []ForeignKey) []*Table {
	if fks == nil {
		return tables
	}
	return eraseOrder(d, tables, fks)
}

// linkedPlan completes an erasure's plan for linked data: it refuses a delete an unmapped table's
// foreign key blocks (dry runs too, so the plan shows it), and counts the shared rows.
func (s *Store) linkedPlan(ctx context.Context, q Querier, tables []*Table, fks []ForeignKey, work []tableWork, ids, shared connector.Values, res *connector.EraseResult) error {
	if err := s.blockedDelete(ctx, q, tables, fks, work, ids); err != nil {
		return err
	}
	var err error
	res.Shared, res.SharedLocations, err = s.countShared(ctx, q, tables, ids, shared)
	return err
}
