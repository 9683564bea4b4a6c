package sqlstore

import (
	"context"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// holder is a column whose rows hold a derived identifier's values: the column a mapping provides
// it from, or a column whose foreign key references a column a mapping matches it on.
type holder struct {
	table  TableName
	column string
}

// UniqueColumner is implemented by dialects that can tell which columns of a table are unique
// by themselves (a primary key or unique index of that one column): a value provided from such
// a column is held by the one row it was read from, so it needs no search for other holders.
type UniqueColumner interface {
	UniqueColumns(ctx context.Context, q Querier, table TableName) ([]string, error)
}

// readUnique records which of t's columns are unique, for a table of a linked mapping that
// provides identifiers (the only tables the answer serves).
func (s *Store) readUnique(ctx context.Context, q Querier, t *Table) error {
	uc, ok := s.d.(UniqueColumner)
	if !ok || len(t.links.provides) == 0 || !s.linked() {
		return nil
	}
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	cols, err := uc.UniqueColumns(ctx, q, t.Name)
	if err != nil {
		return err
	}
	t.unique = map[string]bool{}
	for _, c := range cols {
		t.unique[foldName(s.d, c)] = true
	}
	return nil
}

// soleUniqueProvider reports whether h is the one column that provides identifier in this
// store's mapping and is unique in its table: every derived value then came from the row of that
// table which holds it, one of the subject's own, and no other row can hold it.
func soleUniqueProvider(d Dialect, tables []*Table, h holder, identifier string) bool {
	found := false
	for _, t := range tables {
		for _, p := range t.links.provides {
			if p.identifier != identifier {
				continue
			}
			if !sameTable(d, t.Name, h.table) || !sameColumn(d, p.col.Name, h.column) || !t.unique[foldName(d, p.col.Name)] {
				return false
			}
			found = true
		}
	}
	return found
}

// holders lists, per derived identifier, the columns that hold its values.
func holders(d Dialect, tables []*Table, fks []ForeignKey, identifier string) []holder {
	var out []holder
	add := func(h holder) {
		for _, o := range out {
			if sameTable(d, o.table, h.table) && sameColumn(d, o.column, h.column) {
				return
			}
		}
		out = append(out, h)
	}
	for _, t := range tables {
		for _, p := range t.links.provides {
			if p.identifier == identifier {
				add(holder{table: t.Name, column: p.col.Name})
			}
		}
	}
	for _, t := range tables {
		for _, m := range t.match {
			if m.identifier != identifier {
				continue
			}
			for _, fk := range fks {
				if sameTable(d, fk.To, t.Name) && sameColumn(d, fk.ToColumn, m.col.Name) && !sameTable(d, fk.From, t.Name) {
					add(holder{table: fk.From, column: fk.FromColumn})
				}
			}
		}
	}
	return out
}

// sharedValues finds the derived values that a row which is not the subject's also holds: a
// bystander customer at the same address, another customer's order shipped there. The subject's
// rows of a table are those its delete and retain mappings match with the owned values; a table
// no such mapping covers has no row of the subject's.
func (s *Store) sharedValues(ctx context.Context, q Querier, tables []*Table, fks []ForeignKey, derived, owned connector.Values) (connector.Values, error) {
	shared := connector.Values{}
	for _, identifier := range derived.Names() {
		for _, h := range holders(s.d, tables, fks, identifier) {
			if ownsEveryHolder(s.d, tables, h, identifier) || soleUniqueProvider(s.d, tables, h, identifier) {
				continue
			}
			found, err := s.heldByOthers(ctx, q, tables, h, derived[identifier], owned)
			if err != nil {
				return nil, err
			}
			shared.Add(identifier, found...)
		}
	}
	return shared, nil
}

// ownsEveryHolder reports whether a delete or retain mapping of h's table matches h's column
// exactly on identifier: then every row of that table holding a value of the subject's is the
// subject's own (the mapping matches it), and no other row can hold one, so there is nothing to
// ask the database. A normalised match compares spellings rather than the values themselves, so
// it proves nothing.
func ownsEveryHolder(d Dialect, tables []*Table, h holder, identifier string) bool {
	for _, t := range tables {
		if !sameTable(d, t.Name, h.table) || t.Mapping.Action == privacyv1alpha1.ActionMask {
			continue
		}
		for _, m := range t.match {
			if m.identifier == identifier && sameColumn(d, m.col.Name, h.column) && !m.normalised() {
				return true
			}
		}
	}
	return false
}

// heldByOthers returns the values of values that some row of h's table which is not the
// subject's holds in h's column.
func (s *Store) heldByOthers(ctx context.Context, q Querier, tables []*Table, h holder, values []string, owned connector.Values) ([]string, error) {
	col, err := s.holderColumn(ctx, q, tables, h)
	if err != nil || col == nil {
		return nil, err
	}
	quotedTable, err := QuoteTable(s.d, h.table)
	if err != nil {
		return nil, err
	}
	quoted := s.d.QuoteIdent(col.Name)
	b := NewBuilder(s.d)
	preds := equalAny(s.d, b, *col, quoted, values)
	if len(preds) == 0 {
		return nil, nil
	}
	cond := "(" + strings.Join(preds, " OR ") + ")"
	var own []string
	for _, t := range tables {
		if !sameTable(s.d, t.Name, h.table) || t.Mapping.Action == privacyv1alpha1.ActionMask {
			continue
		}
		if c, ok := t.matchCond(b, owned); ok {
			own = append(own, c)
		}
	}
	if len(own) > 0 {
		cond += " AND NOT COALESCE(" + strings.Join(own, " OR ") + ", 1 = 0)"
	}
	query := b.query("SELECT DISTINCT " + quoted + " FROM " + quotedTable + " WHERE " + cond)
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	rows, err := q.QueryContext(ctx, query.SQL, query.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var held []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		if text, ok := identifierText(v); ok {
			held = append(held, text)
		}
	}
	return held, rows.Err()
}

// holderColumn finds h's column in the catalog: from a mapped table when there is one, else by
// reading the unmapped table's columns. nil when the column is gone.
func (s *Store) holderColumn(ctx context.Context, q Querier, tables []*Table, h holder) (*Column, error) {
	var cols []Column
	for _, t := range tables {
		if sameTable(s.d, t.Name, h.table) {
			cols = t.columns
			break
		}
	}
	if cols == nil {
		var err error
		if cols, err = s.columns(ctx, q, h.table); err != nil {
			return nil, err
		}
	}
	for _, c := range cols {
		if sameColumn(s.d, c.Name, h.column) {
			return &c, nil
		}
	}
	return nil, nil
}

// sharedCountQuery counts t's rows that match only through shared values: they are someone
// else's too, and are left alone.
func (t *Table) sharedCountQuery(owned, shared connector.Values) (Query, bool) {
	if t.Mapping.Action == privacyv1alpha1.ActionRetain || len(shared) == 0 {
		return Query{}, false
	}
	b := NewBuilder(t.d)
	cond, ok := t.matchCond(b, shared)
	if !ok {
		return Query{}, false
	}
	if own, ok := t.matchCond(b, owned); ok {
		cond += " AND NOT COALESCE(" + own + ", 1 = 0)"
	}
	return b.query("SELECT COUNT(*) FROM " + t.quoted + " WHERE " + cond), true
}

// countShared counts the shared rows of every table, per location.
func (s *Store) countShared(ctx context.Context, q Querier, tables []*Table, owned, shared connector.Values) (int64, []connector.LocationCount, error) {
	var total int64
	var locations []connector.LocationCount
	for _, t := range tables {
		query, ok := t.sharedCountQuery(owned, shared)
		if !ok {
			continue
		}
		n, err := s.count(ctx, q, query)
		if err != nil {
			return 0, nil, err
		}
		if n > 0 {
			total += n
			locations = append(locations, connector.LocationCount{Location: t.Location(), Records: n})
		}
	}
	return total, locations, nil
}
