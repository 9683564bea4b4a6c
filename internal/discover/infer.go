package discover

import (
	"fmt"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// inferredPrefix starts the name of a link discover inferred from column names: a schema without
// foreign-key constraints (MyISAM, many ORMs) still names orders.customer_id after customer.id.
const inferredPrefix = "none, inferred from the name"

// inferLinks adds a link for every column named <table>_id, <role>_<table>_id (or camelCase) that no foreign key
// declares, when a table of that name (singular or plural) has an id column of a compatible type.
func inferLinks(cat *Catalog, d sqlstore.Dialect) {
	declared := map[string]bool{}
	for _, fk := range cat.ForeignKeys {
		declared[key(fk.From.Table, fold(d, fk.FromColumn))] = true
	}
	for _, t := range cat.Tables {
		for _, c := range t.Columns {
			if declared[key(t.Name, fold(d, c.Name))] || sqlstore.ValidateColumnName(c.Name) != nil {
				continue
			}
			w := words(c.Name)
			if len(w) < 2 || w[len(w)-1] != "id" {
				continue
			}
			// shipping_address_id names address: the longest run of last words that is a table.
			var target *CatalogTable
			for start := 0; start < len(w)-1 && target == nil; start++ {
				target = findTable(cat, t.Name, strings.Join(w[start:len(w)-1], "_"))
			}
			if target == nil {
				continue
			}
			id, ok := target.Column(d, "id")
			if !ok || !compatible(c, id) {
				continue
			}
			cat.ForeignKeys = append(cat.ForeignKeys, sqlstore.ForeignKey{
				Name:       fmt.Sprintf("%s: %s.%s -> %s.%s", inferredPrefix, t.Name, c.Name, target.Name, id.Name),
				From:       sqlstore.TableName{Table: t.Name},
				FromColumn: c.Name,
				To:         sqlstore.TableName{Table: target.Name},
				ToColumn:   id.Name,
			})
		}
	}
}

// findTable finds the table a column prefix names: customer, customers, categories for category.
func findTable(cat *Catalog, self, base string) *CatalogTable {
	candidates := []string{base, base + "s", base + "es"}
	if strings.HasSuffix(base, "y") {
		candidates = append(candidates, base[:len(base)-1]+"ies")
	}
	for _, t := range cat.Tables {
		if t.Name == self {
			continue
		}
		for _, c := range candidates {
			if strings.EqualFold(t.Name, c) {
				return t
			}
		}
	}
	return nil
}

// compatible: both integers, or both text (a uuid held as text included).
func compatible(a, b sqlstore.Column) bool {
	ai, bi := strings.Contains(lower(a.Type), "int"), strings.Contains(lower(b.Type), "int")
	if ai || bi {
		return ai && bi
	}
	return a.Text == b.Text || lower(a.Type) == lower(b.Type)
}
