package sqlstore

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Index is one index of a table, described by its leading key part: what a search on the
// index's first part can use it for.
type Index struct {
	// Name of the index, as the catalog spells it.
	Name string
	// Column leads the index. For a MySQL generated column it is set together with Expr, the
	// column's generation expression: the column is a normalised shadow of another.
	Column string
	// Expr is the leading expression as the catalog writes it (see canonicalExpr), when the
	// index leads with an expression or a generated column; empty for a plain column.
	Expr string
	// Partial: the index covers only the rows of a WHERE clause, so it cannot serve every search.
	Partial bool
}

// Indexer is what a dialect offers for planning normalised searches. A dialect without it gets
// scans and no advice.
type Indexer interface {
	// Indexes lists the table's indexes, as Index describes them.
	Indexes(ctx context.Context, q Querier, table TableName) ([]Index, error)
	// FoldsCase: comparing col with = or IN ignores letter case under its collation, so its
	// plain index serves a search for every case variant (MySQL's _ci collations).
	FoldsCase(col Column) bool
	// NormalizedIndexDDL is the statement that creates an index a search for the email kind of
	// col can use: an expression index on lower(trim(col)) or an indexed shadow column.
	NormalizedIndexDDL(table TableName, col Column) string
}

// searchPlan says how the spellings of a subject's value are found in a normalised column.
type searchPlan int

const (
	// searchScan: no index serves; the prefilter's expression is evaluated on every row.
	searchScan searchPlan = iota
	// searchExpr: an expression index on lower(trim(col)) serves the prefilter as written.
	searchExpr
	// searchShadow: an indexed generated column holds lower(trim(col)); the prefilter reads it.
	searchShadow
	// searchCollation: the column's collation folds case and its plain index serves an IN on the
	// lower-cased candidates, with prefix LIKEs for surrounding white space.
	searchCollation
)

// search is the plan of one normalised match column.
type search struct {
	plan searchPlan
	// shadow is the quoted generated column of searchShadow.
	shadow string
	// index names the index the plan uses, for tests and advice.
	index string
	// scan is the key a searchScan reads the table by in batches; nil: in one statement.
	scan *ScanKey
}

// lowerTrim is the expression the email prefilter compares and an index must hold.
func lowerTrim(column string) string { return "lower(trim(" + column + "))" }

var (
	exprQuotes    = strings.NewReplacer(`"`, "", "`", "", "[", "", "]", "")
	exprCasts     = regexp.MustCompile(`::(text|charactervarying|varchar|bpchar|character)`)
	exprBareParen = regexp.MustCompile(`\(\(([a-z0-9_$]+)\)\)`)
)

// canonicalExpr writes an index expression in one form whatever catalog printed it: no
// quotes, white space or casts, lower case, and PostgreSQL's TRIM(BOTH FROM x), btrim(x) and
// MariaDB's lcase(x) as trim(x) and lower(x). Two expressions that differ only in the catalog's
// spelling then compare equal; anything else is not recognised (a scan, never a wrong result:
// the normaliser confirms every value).
func canonicalExpr(expr string) string {
	s := strings.ToLower(exprQuotes.Replace(expr))
	s = strings.Join(strings.Fields(s), "")
	s = exprCasts.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "trim(bothfrom", "trim(")
	s = strings.ReplaceAll(s, "btrim(", "trim(")
	s = strings.ReplaceAll(s, "lcase(", "lower(")
	for {
		next := exprBareParen.ReplaceAllString(s, "($1)")
		if next == s {
			return s
		}
		s = next
	}
}

// planSearches reads the table's indexes and plans the search of every normalised match
// column; the columns left to scan get the table's scan key. A dialect without an Indexer
// scans, and a table without normalised columns is left as is.
func (s *Store) planSearches(ctx context.Context, q Querier, t *Table) error {
	if !t.hasNormalised() {
		return nil
	}
	if ix, ok := s.d.(Indexer); ok {
		ictx, cancel := s.stmtCtx(ctx)
		indexes, err := ix.Indexes(ictx, q, t.Name)
		cancel()
		if err != nil {
			return err
		}
		for i, m := range t.match {
			if m.normalised() {
				t.match[i].search = planSearch(s.d, ix, m, indexes)
			}
		}
	}
	var key *ScanKey
	for i, m := range t.match {
		if !m.normalised() || m.search.plan != searchScan {
			continue
		}
		if key == nil {
			var err error
			if key, err = s.scanKey(ctx, q, t); err != nil {
				return err
			}
			if key == nil {
				return nil
			}
		}
		t.match[i].search.scan = key
	}
	return nil
}

func (t *Table) hasNormalised() bool {
	for _, m := range t.match {
		if m.normalised() {
			return true
		}
	}
	return false
}

// planSearch picks the cheapest search an index serves for m: an index on lower(trim(col))
// (an expression or a shadow column), else the column's own index under a case-folding
// collation, else a scan. Phone numbers are always scanned: no index holds their formats.
func planSearch(d Dialect, ix Indexer, m matchColumn, indexes []Index) search {
	if m.kind != normalize.Email {
		return search{}
	}
	want := canonicalExpr(lowerTrim(foldName(d, m.col.Name)))
	for _, idx := range indexes {
		if idx.Partial || idx.Expr == "" || canonicalExpr(idx.Expr) != want {
			continue
		}
		if idx.Column != "" {
			return search{plan: searchShadow, shadow: d.QuoteIdent(idx.Column), index: idx.Name}
		}
		return search{plan: searchExpr, index: idx.Name}
	}
	if ix.FoldsCase(m.col) {
		for _, idx := range indexes {
			if !idx.Partial && idx.Expr == "" && foldName(d, idx.Column) == foldName(d, m.col.Name) {
				return search{plan: searchCollation, index: idx.Name}
			}
		}
	}
	return search{}
}

// searchWarnings names, for every normalised match column that a request would scan, what to
// create so that an index serves it, and where the table has no key to scan it in batches,
// that it is read in one statement.
func (s *Store) searchWarnings(t *Table) []string {
	var warnings []string
	for _, m := range t.match {
		if !m.normalised() || m.search.plan != searchScan {
			continue
		}
		if m.search.scan == nil {
			warnings = append(warnings, s.noScanKeyWarning(t, m))
		}
		ix, ok := s.d.(Indexer)
		if !ok {
			continue
		}
		switch m.kind {
		case normalize.Email:
			warnings = append(warnings, fmt.Sprintf(
				"column %s of table %s is matched as email, which none of its indexes serves: every request scans the table; create one: %s",
				m.col.Name, t.Name, ix.NormalizedIndexDDL(t.Name, m.col)))
		case normalize.Phone:
			warnings = append(warnings, fmt.Sprintf(
				"column %s of table %s is matched as phone: an index cannot hold every format of a phone number, so every request scans the table (in bounded memory)",
				m.col.Name, t.Name))
		}
	}
	return warnings
}

// ShadowColumnName is the name advised for a generated column holding lower(trim(column)).
func ShadowColumnName(column string) string { return column + "_norm" }

// NormalizedIndexName is the name advised for an index serving normalised searches of column.
func NormalizedIndexName(table TableName, column string) string {
	return table.Table + "_" + column + "_norm"
}
