package sqlstore

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Normalised matching. A match column whose kind is email or phone cannot be compared in SQL
// alone: databases fold case differently (SQLite's lower() is ASCII only, MySQL's collations fold
// accents too) and none knows phone numbering plans. So each operation first finds the column's
// spellings of the subject: a prefilter in SQL narrows the rows (an index on the prefilter's
// expression serves it), and the normaliser confirms each value found. The operation then acts
// on exactly those spellings with the dialect's exact Equal, which its plain index serves, so
// a bystander whose value only resembles the subject's is never touched.

// MaxSpellings bounds the distinct stored spellings of one subject's identifier in one column.
// Far more than any person has; more means the column holds something else, and acting on it
// would be a guess.
const MaxSpellings = 10000

// phoneDigitsExpr strips the separators people write phone numbers with, in SQL every dialect
// runs, so that a LIKE on the national digits finds every formatting of the number.
func phoneDigitsExpr(quoted string) string {
	expr := quoted
	for _, sep := range []string{" ", "-", "(", ")", ".", "+", "/"} {
		expr = "REPLACE(" + expr + ", '" + sep + "', '')"
	}
	return expr
}

// normalised reports whether m compares through the normaliser: its kind is not exact and the
// column holds text (an integer column holds no spelling to fold).
func (m matchColumn) normalised() bool {
	return m.kind != normalize.Exact && m.col.Text
}

// matchValues are the values m is compared with exactly, for every value the subject has of m's
// identifier: the value itself for an exact column (or one that bind left alone), and the
// spellings bind found of it for a normalised one.
func (t *Table) matchValues(i int, m matchColumn, ids connector.Values) []string {
	var out []string
	for _, v := range ids[m.identifier] {
		if v == "" {
			continue
		}
		if spellings, ok := t.spellings[i][v]; ok {
			out = append(out, spellings...)
			continue
		}
		out = append(out, v)
	}
	return out
}

// prefilter is a condition that holds for every row whose value of m may normalise to key
// (and for some that do not); ok is false when there is nothing to narrow by. Its form follows
// m's search plan, so that the index the plan found serves it.
func (t *Table) prefilter(b *Builder, m matchColumn, raw, key string) (string, bool) {
	switch m.kind {
	case normalize.Email:
		cands := normalize.EmailCandidates(raw, key)
		switch m.search.plan {
		case searchShadow:
			return m.search.shadow + " IN (" + bindAll(b, cands) + ")", true
		case searchCollation:
			return collationPrefilter(b, m.quoted, cands), true
		default:
			return "LOWER(TRIM(" + m.quoted + ")) IN (" + bindAll(b, cands) + ")", true
		}
	case normalize.Phone:
		digits, ok := normalize.PhoneDigits(key)
		if !ok {
			return "", false
		}
		return phoneDigitsExpr(m.quoted) + " LIKE " + b.Arg("%"+digits+"%"), true
	default:
		return "", false
	}
}

func bindAll(b *Builder, values []string) string {
	marks := make([]string, 0, len(values))
	for _, v := range values {
		marks = append(marks, b.Arg(v))
	}
	return strings.Join(marks, ", ")
}

// leadingSpaces are the white space characters a stored address may start with that the
// collation prefilter looks for; the normaliser trims all of Unicode's white space, but other
// leading characters are not searched for (see docs/datastores.md).
var leadingSpaces = []string{" ", "\t", "\n", "\r"}

// collationPrefilter finds the spellings of an address in a column whose collation folds case,
// with ranges of its plain index only: the candidates themselves (= under the collation also
// ignores trailing spaces where it pads), every value starting with a candidate (trailing white
// space of any kind, and the collation's case folding), and every value starting with white
// space (leading spaces: rare, so a short range).
func collationPrefilter(b *Builder, quoted string, cands []string) string {
	parts := []string{quoted + " IN (" + bindAll(b, cands) + ")"}
	for _, c := range cands {
		parts = append(parts, quoted+" LIKE "+b.Arg(likeEscape(c)+"%")+" ESCAPE '!'")
	}
	for _, sp := range leadingSpaces {
		parts = append(parts, quoted+" LIKE "+b.Arg(sp+"%"))
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// bind returns a copy of t whose normalised match columns compare each value of ids with the
// spellings of it found in them now. Values bound before keep their spellings, so binding again
// with more values (linked data derives them round by round) reads only the new ones. Values
// that do not normalise (a phone number without a country code and no default region) keep
// comparing exactly.
func (s *Store) bind(ctx context.Context, q Querier, t *Table, ids connector.Values, memo spellings) (*Table, error) {
	bound := *t
	bound.spellings = make(map[int]map[string][]string, len(t.match))
	for i, m := range t.match {
		byValue := make(map[string][]string, len(t.spellings[i]))
		for v, spellings := range t.spellings[i] {
			byValue[v] = spellings
		}
		bound.spellings[i] = byValue
		if !m.normalised() {
			continue
		}
		for _, raw := range ids[m.identifier] {
			if _, done := byValue[raw]; done || raw == "" {
				continue
			}
			if found, ok := memo[memoKey(t, m)][raw]; ok {
				byValue[raw] = found
				continue
			}
			key, ok := s.norm.Normalize(m.kind, raw)
			if !ok {
				continue
			}
			spellings, err := s.findSpellings(ctx, q, t, m, raw, key)
			if err != nil {
				return nil, err
			}
			byValue[raw] = spellings
		}
	}
	return &bound, nil
}

// findSpellings reads the values of m that pass the prefilter and keeps the distinct ones that
// normalise to key. Rows are streamed, so memory holds only the subject's spellings. A column
// that no index serves is read in key-range batches where the table has a scan key (scan.go).
func (s *Store) findSpellings(ctx context.Context, q Querier, t *Table, m matchColumn, raw, key string) ([]string, error) {
	if _, ok := t.prefilter(NewBuilder(t.d), m, raw, key); !ok {
		return []string{raw}, nil
	}
	seen := map[string]bool{}
	search := func(batch scanBatch) error {
		cond, _ := t.prefilter(batch.b, m, raw, key)
		if batch.cond != "" {
			cond = batch.cond + " AND (" + cond + ")"
		}
		// No DISTINCT: under a case-insensitive collation it would return one spelling of several.
		return s.readSpellings(ctx, q, t, m, key, "SELECT "+m.quoted+" FROM "+t.quoted+" WHERE "+cond, batch.b.Args(), seen)
	}
	var err error
	if m.scannedInBatches() {
		err = s.scanBatches(ctx, q, t, m.search.scan, s.opts.ScanBatchRows, search)
	} else {
		err = search(scanBatch{b: NewBuilder(t.d)})
	}
	if err != nil {
		return nil, err
	}
	spellings := make([]string, 0, len(seen))
	for v := range seen {
		spellings = append(spellings, v)
	}
	sort.Strings(spellings)
	return spellings, nil
}

// readSpellings runs one search statement and adds to seen every value it returns that
// normalises to key.
func (s *Store) readSpellings(ctx context.Context, q Querier, t *Table, m matchColumn, key, query string, args []any,
	seen map[string]bool) error {
	ctx, cancel := s.stmtCtx(ctx)
	defer cancel()
	if s.opts.OnSpellingSearch != nil {
		s.opts.OnSpellingSearch(query, len(args))
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v *string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		if v == nil || seen[*v] || s.norm.Key(m.kind, *v) != key {
			continue
		}
		seen[*v] = true
		if len(seen) > MaxSpellings {
			return &MappingError{Problems: []string{fmt.Sprintf(
				"column %s of table %s holds more than %d spellings of one identifier", m.col.Name, t.Name, MaxSpellings)}}
		}
	}
	return rows.Err()
}

// bindAll binds every table; see bind. The bound copies point at each other where the tables
// did (the same table's outranking mappings), so that every condition compares spellings.
func (s *Store) bindAll(ctx context.Context, q Querier, tables []*Table, ids connector.Values) ([]*Table, error) {
	return s.bindAllFrom(ctx, q, tables, ids, nil)
}

// bindAllFrom is bindAll taking the spellings in memo as found (memo.go).
func (s *Store) bindAllFrom(ctx context.Context, q Querier, tables []*Table, ids connector.Values, memo spellings) ([]*Table, error) {
	out := make([]*Table, 0, len(tables))
	boundOf := make(map[*Table]*Table, len(tables))
	for _, t := range tables {
		bt, err := s.bind(ctx, q, t, ids, memo)
		if err != nil {
			return nil, err
		}
		boundOf[t] = bt
		out = append(out, bt)
	}
	for _, bt := range out {
		if len(bt.links.outranked) == 0 {
			continue
		}
		outranked := make([]*Table, len(bt.links.outranked))
		for i, other := range bt.links.outranked {
			if b, ok := boundOf[other]; ok {
				other = b
			}
			outranked[i] = other
		}
		bt.links.outranked = outranked
	}
	return out, nil
}

// deepSearch is what deep verification looks for: every value of the subject as given, every
// spelling of it found in a mapped column, and the normalised forms; emails also in any letter
// case (foldedValues).
type deepSearch struct {
	values       []string
	foldedValues []string
	// of holds, per identifier, the values above that are its own (as given, spellings,
	// normalised forms): a match column is searched for its identifiers' values only, so that a
	// bystander's customer id "11" is not the subject's order id "11" (deepSearch.allowIn).
	of map[string]map[string]bool
}

func (ds *deepSearch) own(identifier, v string) {
	if ds.of[identifier] == nil {
		ds.of[identifier] = map[string]bool{}
	}
	ds.of[identifier][v] = true
}

// allowIn is the filter t's deep query applies: a match column of t takes only the values of
// the identifiers it matches; any other column takes every value.
func (ds deepSearch) allowIn(t *Table) func(column, v string) bool {
	matched := map[string][]string{}
	for _, m := range t.match {
		matched[m.col.Name] = append(matched[m.col.Name], m.identifier)
	}
	return func(column, v string) bool {
		names, ok := matched[column]
		if !ok {
			return true
		}
		for _, name := range names {
			if ds.of[name][v] {
				return true
			}
		}
		return false
	}
}

func (s *Store) deepSearchFor(tables []*Table, ids connector.Values) deepSearch {
	seen := map[string]bool{}
	ds := deepSearch{of: map[string]map[string]bool{}}
	add := func(identifier, v string) {
		if v == "" {
			return
		}
		ds.own(identifier, v)
		if !seen[v] {
			seen[v] = true
			ds.values = append(ds.values, v)
		}
	}
	for _, name := range ids.Names() {
		for _, v := range ids[name] {
			add(name, v)
		}
	}
	folded := map[string]bool{}
	for _, t := range tables {
		for i, m := range t.match {
			for _, spellings := range t.spellings[i] {
				for _, v := range spellings {
					add(m.identifier, v)
				}
			}
			if m.kind == normalize.Exact {
				continue
			}
			for _, raw := range ids[m.identifier] {
				key, ok := s.norm.Normalize(m.kind, raw)
				if raw == "" || !ok {
					continue
				}
				add(m.identifier, key)
				if m.kind == normalize.Email {
					for _, c := range normalize.EmailCandidates(raw, key) {
						folded[c] = true
						ds.own(m.identifier, c)
					}
				}
			}
		}
	}
	for v := range folded {
		ds.foldedValues = append(ds.foldedValues, v)
	}
	sort.Strings(ds.values)
	sort.Strings(ds.foldedValues)
	return ds
}

// likeEscape escapes LIKE's wildcards with '!', an escape character every dialect takes the same.
func likeEscape(v string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(v)
}

// foldedContains holds when the text column holds value in any letter case (value is lower case).
func foldedContains(b *Builder, quoted, value string) string {
	return "LOWER(" + quoted + ") LIKE " + b.Arg("%"+likeEscape(value)+"%") + " ESCAPE '!'"
}
