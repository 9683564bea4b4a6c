package discover

import (
	"context"
	"fmt"
	"sort"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// Catalog is what discover knows of a database: its tables in the connection's default schema,
// their columns and indexes, and the single-column foreign keys between them. It never holds a
// row's value: discover reads the catalog only.
type Catalog struct {
	Type   privacyv1alpha1.StoreType
	Tables []*CatalogTable
	// ForeignKeys between tables of the default schema (keys into or out of other schemas are
	// left out: a mapping of this store cannot follow them).
	ForeignKeys []sqlstore.ForeignKey
	// Skipped are tables whose names a mapping cannot spell, with why.
	Skipped []string
}

// CatalogTable is one table of the catalog.
type CatalogTable struct {
	Name    string
	Columns []sqlstore.Column
	// Indexed are the columns that lead an index, folded as the dialect compares names.
	Indexed map[string]bool
}

// Column finds a column by name as the dialect compares names.
func (t *CatalogTable) Column(d sqlstore.Dialect, name string) (sqlstore.Column, bool) {
	for _, c := range t.Columns {
		if fold(d, c.Name) == fold(d, name) {
			return c, true
		}
	}
	return sqlstore.Column{}, false
}

// Table finds a table by name.
func (c *Catalog) Table(name string) *CatalogTable {
	for _, t := range c.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// ReadCatalog reads the catalog through the connector's own dialect: the same column, index and
// foreign-key readers the operator's Check uses, so the proposal sees the database as the
// operator will.
func ReadCatalog(ctx context.Context, d sqlstore.Dialect, q sqlstore.Querier) (*Catalog, error) {
	names, err := listTables(ctx, d, q)
	if err != nil {
		return nil, fmt.Errorf("listing the tables: %w", err)
	}
	cat := &Catalog{Type: d.Type()}
	for _, name := range names {
		if err := sqlstore.ValidateColumnName(name); err != nil {
			cat.Skipped = append(cat.Skipped, fmt.Sprintf("table %q: its name is not one a mapping can spell (letters, digits and _)", name))
			continue
		}
		tn := sqlstore.TableName{Table: name}
		cols, err := d.Columns(ctx, q, tn)
		if err != nil {
			return nil, fmt.Errorf("reading the columns of table %s: %w", name, err)
		}
		indexed, err := d.IndexedColumns(ctx, q, tn)
		if err != nil {
			return nil, fmt.Errorf("reading the indexes of table %s: %w", name, err)
		}
		t := &CatalogTable{Name: name, Columns: cols, Indexed: map[string]bool{}}
		for _, c := range indexed {
			t.Indexed[fold(d, c)] = true
		}
		cat.Tables = append(cat.Tables, t)
	}
	sort.Slice(cat.Tables, func(i, j int) bool { return cat.Tables[i].Name < cat.Tables[j].Name })
	reader, ok := d.(sqlstore.ForeignKeyReader)
	if !ok {
		return cat, nil
	}
	fks, err := reader.ForeignKeys(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("reading the foreign keys: %w", err)
	}
	for _, fk := range fks {
		if fk.From.Schema != "" || fk.To.Schema != "" || cat.Table(fk.From.Table) == nil || cat.Table(fk.To.Table) == nil {
			continue
		}
		if sqlstore.ValidateColumnName(fk.FromColumn) != nil || sqlstore.ValidateColumnName(fk.ToColumn) != nil {
			cat.Skipped = append(cat.Skipped, fmt.Sprintf("foreign key of table %s: a column name is not one a mapping can spell: not followed", fk.From.Table))
			continue
		}
		cat.ForeignKeys = append(cat.ForeignKeys, fk)
	}
	return cat, nil
}

func fold(d sqlstore.Dialect, name string) string {
	if d.FoldColumnNames() {
		return lower(name)
	}
	return name
}
