package sqlstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/go-logr/logr"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Deep verification of the whole database (spec.verification.deepScope: database). Besides the
// mapped tables, it searches every text-like column of every other table and view the
// credentials can read for every identifier value of the subject, and reports what it finds as
// unmapped findings by table and column: leads for a human who then maps them, never remaining
// (the mapping cannot erase what it does not cover).

// Bounds of one search of the database, so that a deep verification of a large schema ends.
const (
	// DefaultUnmappedMaxRelations is the most tables and views outside the mapping searched.
	DefaultUnmappedMaxRelations = 500
	// DefaultUnmappedMaxColumns is the most columns outside the mapping searched.
	DefaultUnmappedMaxColumns = 5000
	// maxUnmappedPredicates bounds the predicates (column x value) of one statement, so that a
	// subject with many derived values never builds a statement the database refuses (SQLite's
	// bound-parameter limit, MySQL's prepared-statement size). A search with more values than it
	// takes runs several statements per column; a row holding values of two statements is then
	// counted by each.
	maxUnmappedPredicates = 256
)

// Relation is a table or view of the catalog, for deep verification of the whole database.
type Relation struct {
	// Name is the relation as a mapping spells it: unqualified in the connection's default
	// schema (as ForeignKey names tables), so it compares with the mapped tables.
	Name TableName
	// Qualified is the relation with its schema always set; statements name it so.
	Qualified TableName
	// Location is how findings name the relation (PostgreSQL: always schema.table).
	Location string
}

// RelationLister is implemented by dialects that can list the tables and views a connection may
// read, for deep verification of the whole database (spec.verification.deepScope: database).
type RelationLister interface {
	// Relations lists, sorted, the readable tables and views outside the system schemas: those
	// of the connection's default database or schema, of every schema it has (PostgreSQL), and
	// of the extra schemas (the ones the mapping names).
	Relations(ctx context.Context, q Querier, extraSchemas []string) ([]Relation, error)
}

// unmappedLimits are the bounds in force, Options or the defaults.
func (o Options) unmappedLimits() (relations, columns int) {
	relations, columns = o.UnmappedMaxRelations, o.UnmappedMaxColumns
	if relations <= 0 {
		relations = DefaultUnmappedMaxRelations
	}
	if columns <= 0 {
		columns = DefaultUnmappedMaxColumns
	}
	return relations, columns
}

// searchesDatabase reports whether a deep verification of this store also searches outside the
// mapping.
func (s *Store) searchesDatabase() bool {
	return s.deepScope == privacyv1alpha1.DeepScopeDatabase
}

// deepScopeOf is the spec's deep scope; unset is mapped.
func deepScopeOf(spec *privacyv1alpha1.DataStoreSpec) privacyv1alpha1.DeepScope {
	if spec == nil || spec.Verification == nil || spec.Verification.DeepScope == "" {
		return privacyv1alpha1.DeepScopeMapped
	}
	return spec.Verification.DeepScope
}

// deepScopeProblem says what is wrong with the spec's deep scope for dialect d, or "".
func deepScopeProblem(d Dialect, spec *privacyv1alpha1.DataStoreSpec) string {
	switch scope := deepScopeOf(spec); scope {
	case privacyv1alpha1.DeepScopeMapped:
		return ""
	case privacyv1alpha1.DeepScopeDatabase:
		if _, ok := d.(RelationLister); !ok {
			return fmt.Sprintf("verification.deepScope database is not supported for %s stores", d.Type())
		}
		return ""
	default:
		return fmt.Sprintf("verification.deepScope %q is neither mapped nor database", scope)
	}
}

// unmappedRelations lists the relations outside the mapping, at most the relation cap; capped
// is how many were left out.
func (s *Store) unmappedRelations(ctx context.Context, q Querier) (rels []Relation, capped int, err error) {
	lister, ok := s.d.(RelationLister)
	if !ok {
		return nil, 0, nil
	}
	var schemas []string
	seen := map[string]bool{}
	for _, m := range s.tables {
		if name, err := ParseTableName(m.Name); err == nil && name.Schema != "" && !seen[name.Schema] {
			seen[name.Schema] = true
			schemas = append(schemas, name.Schema)
		}
	}
	sctx, cancel := s.stmtCtx(ctx)
	all, err := lister.Relations(sctx, q, schemas)
	cancel()
	if err != nil {
		return nil, 0, err
	}
	maxRelations, _ := s.opts.unmappedLimits()
	for _, r := range all {
		if s.isMapped(r.Name) {
			continue
		}
		if len(rels) == maxRelations {
			capped++
			continue
		}
		rels = append(rels, r)
	}
	return rels, capped, nil
}

// isMapped reports whether some mapping covers the relation.
func (s *Store) isMapped(name TableName) bool {
	for _, m := range s.tables {
		if mn, err := ParseTableName(m.Name); err == nil && sameTable(s.d, mn, name) {
			return true
		}
	}
	return false
}

// unmappedSearch is what the database is searched for: what deep verification of the mapped
// tables looks for, plus the normalised forms of identifiers the mapping does not match here
// (an email address the store only knows through a derived customer id), by their names' kinds.
func (s *Store) unmappedSearch(tables []*Table, ids connector.Values) deepSearch {
	search := s.deepSearchFor(tables, ids)
	values := map[string]bool{}
	for _, v := range search.values {
		values[v] = true
	}
	folded := map[string]bool{}
	for _, v := range search.foldedValues {
		folded[v] = true
	}
	for _, name := range ids.Names() {
		kind := normalize.KindFor(name, "")
		if kind == normalize.Exact {
			continue
		}
		for _, raw := range ids[name] {
			key, ok := s.norm.Normalize(kind, raw)
			if !ok {
				continue
			}
			values[key] = true
			if kind == normalize.Email {
				for _, c := range normalize.EmailCandidates(raw, key) {
					folded[c] = true
				}
			}
		}
	}
	return deepSearch{values: sortedKeys(values), foldedValues: sortedKeys(folded)}
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for v := range set {
		if v != "" {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// searchUnmapped searches every text-like column of the relations outside the mapping for the
// subject's values and returns the columns holding some, as "table.column" (PostgreSQL:
// "schema.table.column"). It runs outside the verification's transaction, one statement at a
// time, so that a relation it cannot search (a view that fails, a table the credentials may
// list but not read, a statement timing out on a huge table) is skipped and logged without
// failing the verification of the mapped tables; only the caller's cancellation stops it.
func (s *Store) searchUnmapped(ctx context.Context, tables []*Table, ids connector.Values) (int64, []connector.LocationCount, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("store", string(s.d.Type()))
	search := s.unmappedSearch(tables, ids)
	if len(search.values) == 0 && len(search.foldedValues) == 0 {
		return 0, nil, nil
	}
	rels, capped, err := s.unmappedRelations(ctx, s.db)
	if err != nil {
		return 0, nil, err
	}
	_, maxColumns := s.opts.unmappedLimits()
	var total int64
	var found []connector.LocationCount
	columns, skippedColumns := 0, 0
	for i, r := range rels {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		cols, err := s.columns(ctx, s.db, r.Qualified)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			log.Info("deep verification skipped a table or view it could not read", "relation", r.Location, "code", s.d.ErrorCode(err))
			continue
		}
		searchable := make([]Column, 0, len(cols))
		for _, c := range cols {
			if c.Searchable {
				searchable = append(searchable, c)
			}
		}
		if columns+len(searchable) > maxColumns {
			skippedColumns += len(searchable)
			for _, rest := range rels[i+1:] {
				log.V(1).Info("deep verification did not search a table or view: column cap reached", "relation", rest.Location)
			}
			capped += len(rels) - i - 1
			break
		}
		columns += len(searchable)
		counts, err := s.searchRelation(ctx, r, searchable, search)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			log.Info("deep verification skipped a table or view it could not search", "relation", r.Location, "code", s.d.ErrorCode(err))
			continue
		}
		for _, c := range searchable {
			if n := counts[c.Name]; n > 0 {
				total += n
				found = append(found, connector.LocationCount{Location: r.Location + "." + c.Name, Records: n})
			}
		}
	}
	if capped > 0 || skippedColumns > 0 {
		maxRelations, _ := s.opts.unmappedLimits()
		log.Info("deep verification of the whole database hit its cap: some tables or views were not searched",
			"notSearched", capped, "maxRelations", maxRelations, "maxColumns", maxColumns)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Location < found[j].Location })
	return total, found, nil
}

// searchRelation counts, per column, the rows of r holding one of the searched values. Columns
// and values are split so that no statement has more than maxUnmappedPredicates predicates.
func (s *Store) searchRelation(ctx context.Context, r Relation, cols []Column, search deepSearch) (map[string]int64, error) {
	counts := map[string]int64{}
	if len(cols) == 0 {
		return counts, nil
	}
	// Catalog names are quoted as they are, whatever the spec pattern allows: the dialect's
	// quoting doubles any quote inside, which is complete for every name a catalog holds.
	quoted := s.d.QuoteIdent(r.Qualified.Schema) + "." + s.d.QuoteIdent(r.Qualified.Table)
	if r.Qualified.Schema == "" {
		quoted = s.d.QuoteIdent(r.Qualified.Table)
	}
	perValueSet := len(search.values) + len(search.foldedValues)
	colsPerStmt := max(1, maxUnmappedPredicates/max(1, perValueSet))
	for start := 0; start < len(cols); start += colsPerStmt {
		group := cols[start:min(len(cols), start+colsPerStmt)]
		for _, batch := range valueBatches(search, maxUnmappedPredicates) {
			t := &Table{d: s.d, Name: r.Name, quoted: quoted, columns: group}
			if err := s.countInto(ctx, t, batch, counts); err != nil {
				return nil, err
			}
		}
	}
	return counts, nil
}

// countInto runs t's deep query for batch and adds the counts per column.
func (s *Store) countInto(ctx context.Context, t *Table, batch deepSearch, counts map[string]int64) error {
	found, err := s.deepCounts(ctx, t, batch)
	if err != nil {
		return err
	}
	for name, n := range found {
		counts[name] += n
	}
	return nil
}

// deepCounts is Store.deep for a relation outside the mapping, by column name, on the pool.
func (s *Store) deepCounts(ctx context.Context, t *Table, search deepSearch) (map[string]int64, error) {
	query, cols, ok := t.DeepQuery(search.values, search.foldedValues)
	if !ok {
		return nil, nil
	}
	n, err := s.countRow(ctx, s.db, query, len(cols))
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(cols))
	for i, c := range cols {
		out[c.Name] = n[i]
	}
	return out, nil
}

// valueBatches splits the search into batches of at most size values (plain and folded
// together); one batch when it fits.
func valueBatches(search deepSearch, size int) []deepSearch {
	if len(search.values)+len(search.foldedValues) <= size {
		return []deepSearch{search}
	}
	var out []deepSearch
	var cur deepSearch
	flush := func() {
		if len(cur.values)+len(cur.foldedValues) > 0 {
			out = append(out, cur)
			cur = deepSearch{}
		}
	}
	for _, v := range search.values {
		if len(cur.values)+len(cur.foldedValues) == size {
			flush()
		}
		cur.values = append(cur.values, v)
	}
	for _, v := range search.foldedValues {
		if len(cur.values)+len(cur.foldedValues) == size {
			flush()
		}
		cur.foldedValues = append(cur.foldedValues, v)
	}
	flush()
	return out
}

// unmappedWarnings are Check's warnings about a deep scope of database: the caps a deep
// verification would hit, so that nobody takes a capped search for a complete one.
func (s *Store) unmappedWarnings(ctx context.Context) ([]string, error) {
	if !s.searchesDatabase() {
		return nil, nil
	}
	rels, capped, err := s.unmappedRelations(ctx, s.db)
	if err != nil {
		return nil, err
	}
	maxRelations, maxColumns := s.opts.unmappedLimits()
	if capped > 0 {
		return []string{fmt.Sprintf("deepScope database: %d tables and views outside the mapping exceed the cap of %d; deep verification searches the first %d in name order and skips %d",
			len(rels)+capped, maxRelations, len(rels), capped)}, nil
	}
	columns := 0
	for _, r := range rels {
		cols, err := s.columns(ctx, s.db, r.Qualified)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		for _, c := range cols {
			if c.Searchable {
				columns++
			}
		}
		if columns > maxColumns {
			// Enough to warn: the catalog of a large database is not read to the end.
			break
		}
	}
	if columns > maxColumns {
		return []string{fmt.Sprintf("deepScope database: the tables and views outside the mapping have more than %d text-like columns, the cap; deep verification skips the tables past it in name order",
			maxColumns)}, nil
	}
	return nil, nil
}
