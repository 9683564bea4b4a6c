package sqlstore

import (
	"fmt"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// links is what linked data adds to a mapped table: the columns it provides derived identifiers
// from, and the mappings of the same table whose rule beats its own.
type links struct {
	// index of the mapping in spec.tables.
	index    int
	provides []provideColumn
	// outranked: the same table's mappings whose rows this mapping must leave alone (retain beats
	// delete, delete beats mask).
	outranked []*Table
}

type provideColumn struct {
	col        Column
	quoted     string
	identifier string
}

// resolveProvides finds the provides columns in the catalog's columns.
func (t *Table) resolveProvides(byName map[string]Column) []string {
	var problems []string
	for _, p := range t.Mapping.Provides {
		quoted, err := QuoteColumn(t.d, p.Column)
		if err != nil {
			problems = append(problems, fmt.Sprintf("table %s: provides: %v", t.Name, err))
			continue
		}
		c, ok := byName[foldName(t.d, p.Column)]
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s of table %s (provides %s) does not exist", p.Column, t.Name, p.Identifier))
			continue
		}
		t.links.provides = append(t.links.provides, provideColumn{col: c, quoted: quoted, identifier: p.Identifier})
	}
	return problems
}

// rank orders the actions when several mappings match one row: the highest wins.
func rank(a privacyv1alpha1.TableAction) int {
	switch a {
	case privacyv1alpha1.ActionRetain:
		return 3
	case privacyv1alpha1.ActionDelete:
		return 2
	default:
		return 1
	}
}

// linkTables numbers the mappings and tells each which mappings of the same table outrank it.
// Two mappings of one table with the same action need no rule: whichever runs first changes the
// row and the other finds nothing left to do (a masked row no longer counts as unmasked).
func linkTables(tables []*Table) {
	for i, t := range tables {
		t.links.index = i
		t.links.outranked = nil
		for _, other := range tables {
			if other != t && other.Name == t.Name && rank(other.Mapping.Action) > rank(t.Mapping.Action) {
				t.links.outranked = append(t.links.outranked, other)
			}
		}
	}
}

// outrankedCond is " AND NOT (...)" for every mapping of the same table that outranks t and can
// match the subject: its rows are its own. Empty when there is none. A match on a NULL column is
// NULL, not false, so it is coalesced: NOT NULL would drop the row from t's mapping too.
func (t *Table) outrankedCond(b *Builder, ids connector.Values) string {
	var out strings.Builder
	for _, other := range t.links.outranked {
		if cond, ok := other.matchCond(b, ids); ok {
			out.WriteString(" AND NOT COALESCE(" + cond + ", 1 = 0)")
		}
	}
	return out.String()
}

// repeatedTableProblems checks what a table listed more than once needs: each listing must say
// something different (an identical one is a copy-paste slip), and provides columns must be
// identifiers.
func repeatedTableProblems(tables []privacyv1alpha1.TableMapping) []string {
	var problems []string
	seen := map[string]bool{}
	for _, t := range tables {
		key := fmt.Sprintf("%s|%v|%s", t.Name, t.Match, t.Action)
		if seen[key] {
			problems = append(problems, fmt.Sprintf("table %s is listed twice with the same match and action", t.Name))
		}
		seen[key] = true
		for _, p := range t.Provides {
			if err := ValidateColumnName(p.Column); err != nil {
				problems = append(problems, fmt.Sprintf("table %s: provides: %v", t.Name, err))
			}
			if p.Identifier == "" {
				problems = append(problems, fmt.Sprintf("table %s: provides column %s names no identifier", t.Name, p.Column))
			}
		}
	}
	return problems
}
