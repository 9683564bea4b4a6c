package sqlstore

import (
	"context"
	"fmt"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// linkWarnings reads the catalog's foreign keys and warns, for a linked mapping or one whose
// tables other tables reference:
//   - when a table the mapping deletes or masks is referenced by a foreign key from a table the
//     mapping does not cover: its rows may block the erasure, or keep the subject's data
//     through the key;
//   - when a provided column has no index: following the link back (shared rows, re-verify)
//     scans the table. Matched columns are warned about by indexWarnings.
func (s *Store) linkWarnings(ctx context.Context, tables []*Table) ([]string, error) {
	fks, err := s.foreignKeys(ctx, s.db)
	if err != nil {
		return nil, err
	}
	var warnings []string
	seen := map[string]bool{}
	warn := func(w string) {
		if !seen[w] {
			seen[w] = true
			warnings = append(warnings, w)
		}
	}
	for _, t := range tables {
		if t.Mapping.Action == privacyv1alpha1.ActionRetain {
			continue
		}
		for _, fk := range fks {
			if sameTable(s.d, fk.To, t.Name) && !mapped(s.d, tables, fk.From) {
				warn(fmt.Sprintf("table %s, which the mapping does not cover, references table %s (foreign key %s): its rows may block the erasure or keep the subject's data; map table %s",
					fk.From, t.Name, fk.Name, fk.From))
			}
		}
	}
	for _, t := range tables {
		if len(t.links.provides) == 0 {
			continue
		}
		leading, err := s.leadingIndexed(ctx, t.Name)
		if err != nil {
			return nil, err
		}
		for _, p := range t.links.provides {
			if !leading[foldName(s.d, p.col.Name)] {
				warn(fmt.Sprintf("column %s of table %s (provides %s) has no index: finding rows that share its values scans the table",
					p.col.Name, t.Name, p.identifier))
			}
		}
	}
	return warnings, nil
}

// leadingIndexed is the set of the table's columns that lead an index, folded.
func (s *Store) leadingIndexed(ctx context.Context, name TableName) (map[string]bool, error) {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	indexed, err := s.d.IndexedColumns(ctx, s.db, name)
	if err != nil {
		return nil, err
	}
	leading := map[string]bool{}
	for _, c := range indexed {
		leading[foldName(s.d, c)] = true
	}
	return leading, nil
}
