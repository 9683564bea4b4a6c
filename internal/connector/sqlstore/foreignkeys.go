package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ForeignKey is a single-column foreign key of the database's catalog. Keys over several columns
// are not listed: linked data follows one column to one column.
type ForeignKey struct {
	// Name of the constraint (SQLite has none: the dialect makes one up from the columns).
	Name string
	// From is the referencing table and column.
	From       TableName
	FromColumn string
	// To is the referenced table and column.
	To       TableName
	ToColumn string
	// Blocks: deleting a referenced row fails while a referencing row exists (NO ACTION,
	// RESTRICT), rather than cascading or setting NULL.
	Blocks bool
}

func (fk ForeignKey) String() string {
	return fmt.Sprintf("%s (%s.%s -> %s.%s)", fk.Name, fk.From, fk.FromColumn, fk.To, fk.ToColumn)
}

// ForeignKeyReader is implemented by dialects that can list their catalog's foreign keys. Table
// names in the default schema (search_path, the DSN's database, main) come back unqualified,
// as a mapping spells them.
type ForeignKeyReader interface {
	ForeignKeys(ctx context.Context, q Querier) ([]ForeignKey, error)
}

// foreignKeys reads the catalog's foreign keys, or none when the dialect cannot. Like the
// mapped tables they are reused within CatalogTTL; a failed statement forgets them, so a
// constraint added meanwhile is seen by the retry.
func (s *Store) foreignKeys(ctx context.Context, q Querier) ([]ForeignKey, error) {
	r, ok := s.d.(ForeignKeyReader)
	if !ok {
		return nil, nil
	}
	if s.opts.CatalogTTL > 0 {
		if fks, ok := s.catalog.getForeignKeys(time.Now()); ok {
			return fks, nil
		}
	}
	start := time.Now()
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	fks, err := r.ForeignKeys(ctx, q)
	if err == nil {
		fks, err = s.spellAsMapped(ctx, q, fks)
	}
	if err == nil && s.opts.CatalogTTL > 0 {
		s.catalog.setForeignKeys(fks, start.Add(s.opts.CatalogTTL))
	}
	return fks, err
}

// sameTable compares table names as the dialect does: case-insensitively where column names are.
func sameTable(d Dialect, a, b TableName) bool {
	if d.FoldColumnNames() {
		return strings.EqualFold(a.Schema, b.Schema) && strings.EqualFold(a.Table, b.Table)
	}
	return a == b
}

// sameColumn compares column names as the dialect does.
func sameColumn(d Dialect, a, b string) bool { return foldName(d, a) == foldName(d, b) }

// mapped reports whether any mapping covers table name.
func mapped(d Dialect, tables []*Table, name TableName) bool {
	for _, t := range tables {
		if sameTable(d, t.Name, name) {
			return true
		}
	}
	return false
}

// DefaultSchemaReader is implemented by dialects whose foreign-key readers return tables of the
// default schema unqualified: it names that schema (current_schema(), DATABASE(), main).
type DefaultSchemaReader interface {
	DefaultSchema(ctx context.Context, q Querier) (string, error)
}

// spellAsMapped names the default schema's tables in fks as the mapping does: a mapping that
// writes "public.customer" must meet the keys the catalog lists for "customer", or the erase
// order, shared rows and coverage would not see them.
func (s *Store) spellAsMapped(ctx context.Context, q Querier, fks []ForeignKey) ([]ForeignKey, error) {
	r, ok := s.d.(DefaultSchemaReader)
	if !ok || len(fks) == 0 {
		return fks, nil
	}
	var qualified []TableName
	for _, m := range s.tables {
		if name, err := ParseTableName(m.Name); err == nil && name.Schema != "" {
			qualified = append(qualified, name)
		}
	}
	if len(qualified) == 0 {
		return fks, nil
	}
	schema, err := r.DefaultSchema(ctx, q)
	if err != nil || schema == "" {
		return fks, err
	}
	spelled := func(n TableName) TableName {
		if n.Schema != "" {
			return n
		}
		for _, name := range qualified {
			if sameTable(s.d, name, TableName{Schema: schema, Table: n.Table}) {
				return name
			}
		}
		return n
	}
	out := make([]ForeignKey, len(fks))
	for i, fk := range fks {
		fk.From, fk.To = spelled(fk.From), spelled(fk.To)
		out[i] = fk
	}
	return out, nil
}
