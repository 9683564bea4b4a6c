package sqlstore

import (
	"fmt"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Table is a mapped table resolved against the database's catalog: every name validated and
// quoted, every mapped column known to exist.
type Table struct {
	d       Dialect
	Name    TableName
	Mapping privacyv1alpha1.TableMapping
	quoted  string
	columns []Column
	match   []matchColumn
	mask    []maskColumn
	// links are what linked data adds: the provides columns and the rules of the same table's
	// other mappings (see links.go).
	links links
	// spellings are, per index of match and per value of the subject, the stored spellings of
	// that value in a normalised column, found by Store.bind for one operation (see match.go).
	spellings map[int]map[string][]string
	// unique are the columns unique by themselves (folded names), read for tables that provide
	// identifiers (see readUnique).
	unique map[string]bool
}

type matchColumn struct {
	col        Column
	quoted     string
	identifier string
	kind       normalize.Kind
	// search is how the spellings of a value are found when kind is not exact (see indexes.go).
	search search
}

// scannedInBatches: the normalised column's spellings are searched by reading the table in key
// ranges (scan.go), one statement per range.
func (m matchColumn) scannedInBatches() bool {
	return m.normalised() && m.search.plan == searchScan && m.search.scan != nil
}

type maskColumn struct {
	col      Column
	quoted   string
	strategy privacyv1alpha1.MaskStrategy
}

// MappingError lists what is wrong between a mapping and the database's schema.
type MappingError struct {
	Problems []string
}

func (e *MappingError) Error() string { return strings.Join(e.Problems, "; ") }

// NewTable resolves mapping against columns, the table's catalog entry (nil: the table does not
// exist). Problems come back as a *MappingError naming tables and columns.
func NewTable(d Dialect, mapping privacyv1alpha1.TableMapping, columns []Column) (*Table, error) {
	name, err := ParseTableName(mapping.Name)
	if err != nil {
		return nil, &MappingError{Problems: []string{err.Error()}}
	}
	quoted, err := QuoteTable(d, name)
	if err != nil {
		return nil, &MappingError{Problems: []string{err.Error()}}
	}
	if len(columns) == 0 {
		return nil, &MappingError{Problems: []string{fmt.Sprintf("table %s does not exist", name)}}
	}
	t := &Table{d: d, Name: name, Mapping: mapping, quoted: quoted, columns: columns}
	byName := make(map[string]Column, len(columns))
	for _, c := range columns {
		byName[foldName(d, c.Name)] = c
	}
	var problems []string
	lookup := func(column string) (Column, string, bool) {
		q, err := QuoteColumn(d, column)
		if err != nil {
			problems = append(problems, fmt.Sprintf("table %s: %v", name, err))
			return Column{}, "", false
		}
		c, ok := byName[foldName(d, column)]
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s of table %s does not exist", column, name))
			return Column{}, "", false
		}
		return c, q, true
	}
	if len(mapping.Match) == 0 {
		problems = append(problems, fmt.Sprintf("table %s: match lists no column", name))
	}
	for _, m := range mapping.Match {
		if c, q, ok := lookup(m.Column); ok {
			t.match = append(t.match, matchColumn{col: c, quoted: q, identifier: m.Identifier,
				kind: normalize.KindFor(m.Identifier, string(m.As))})
		}
	}
	if mapping.Action == privacyv1alpha1.ActionMask {
		if len(mapping.Mask) == 0 {
			problems = append(problems, fmt.Sprintf("table %s: action mask lists no column to mask", name))
		}
		for _, m := range mapping.Mask {
			c, q, ok := lookup(m.Column)
			if !ok {
				continue
			}
			if p := maskProblem(c, m.Strategy); p != "" {
				problems = append(problems, fmt.Sprintf("column %s of table %s %s", m.Column, name, p))
				continue
			}
			t.mask = append(t.mask, maskColumn{col: c, quoted: q, strategy: m.Strategy})
		}
	}
	problems = append(problems, t.resolveProvides(byName)...)
	switch mapping.Action {
	case privacyv1alpha1.ActionDelete, privacyv1alpha1.ActionMask, privacyv1alpha1.ActionRetain:
	default:
		problems = append(problems, fmt.Sprintf("table %s: unknown action %q", name, mapping.Action))
	}
	if len(problems) > 0 {
		return nil, &MappingError{Problems: problems}
	}
	return t, nil
}

// maskProblem says why strategy cannot write column c, or "".
func maskProblem(c Column, strategy privacyv1alpha1.MaskStrategy) string {
	switch strategy {
	case privacyv1alpha1.MaskNullify:
		if !c.Nullable {
			return "is NOT NULL: nullify cannot write NULL"
		}
	case privacyv1alpha1.MaskRedact:
		if !c.Text {
			return fmt.Sprintf("has type %s: redact needs a text column", c.Type)
		}
		if c.MaxLen > 0 && c.MaxLen < len(privacyv1alpha1.RedactedMarker) {
			return fmt.Sprintf("holds at most %d characters: redact writes %d", c.MaxLen, len(privacyv1alpha1.RedactedMarker))
		}
	case privacyv1alpha1.MaskHash:
		if !c.Text {
			return fmt.Sprintf("has type %s: hash needs a text column", c.Type)
		}
		if c.MaxLen > 0 && c.MaxLen < hashLen {
			return fmt.Sprintf("holds at most %d characters: hash writes %d", c.MaxLen, hashLen)
		}
	default:
		return fmt.Sprintf("has unknown mask strategy %q", strategy)
	}
	return ""
}

// hashLen is the length of a hex SHA-256.
const hashLen = 64

// Quoted is the table's quoted name.
func (t *Table) Quoted() string { return t.quoted }

// Location is where the table's records are reported.
func (t *Table) Location() connector.Location { return t.Name.String() }

// DeepLocation is where deep verify reports rows of column.
func (t *Table) DeepLocation(column string) connector.Location {
	return fmt.Sprintf("%s (deep: %s)", t.Name, column)
}

// UsableIdentifiers drops empty values: an empty identifier would match every row whose column
// is empty, and every text contains it.
func UsableIdentifiers(ids connector.Identifiers) connector.Identifiers {
	out := make(connector.Identifiers, len(ids))
	for name, v := range ids {
		if v != "" {
			out[name] = v
		}
	}
	return out
}
