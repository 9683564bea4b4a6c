// Package discover reads a SQL database's catalog (tables, columns, foreign keys, indexes) and
// proposes a DataStore mapping for it: identifier-like columns as matches, foreign-key chains as
// provides and match, tables the subject's rows point at from several places as mask, each choice
// commented. It reads no row: only the catalog. kubectl dsr discover prints the proposal.
package discover

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// Limits of the DataStore schema the proposal must stay within.
const (
	maxTables   = 128
	maxMatches  = 16
	maxProvides = 16
	maxMasks    = 64
)

// Options tune a proposal.
type Options struct {
	// Known are the identifier names the requests' identifiers Secret carries (email, phone,
	// userId). Only those are matched: the operator refuses a linked mapping that matches an
	// identifier neither the Secret nor a provides gives. Empty: email.
	Known []string
}

// Proposal is a proposed mapping with the reasons for it.
type Proposal struct {
	Type     privacyv1alpha1.StoreType
	Listings []*Listing
	// Notes are what the proposal left out, and why.
	Notes []string
}

// Listing is one proposed spec.tables entry.
type Listing struct {
	Mapping privacyv1alpha1.TableMapping
	// Why explains the choices, one line each.
	Why []string
	// Warnings are problems to fix in the database (a missing index) or to review.
	Warnings []string
}

// Tables is the proposal as spec.tables.
func (p *Proposal) Tables() []privacyv1alpha1.TableMapping {
	out := make([]privacyv1alpha1.TableMapping, 0, len(p.Listings))
	for _, l := range p.Listings {
		out = append(out, l.Mapping)
	}
	return out
}

// ErrNothingToMatch: no column of a known identifier was found, so no row can be found from the
// identifiers Secret.
var ErrNothingToMatch = errors.New("no column looks like it holds an identifier of the identifiers Secret")

// reach says how a table came into the proposal.
type reach int

const (
	reachRoot    reach = iota // a column of it holds a known identifier
	reachChain                // a foreign key of it references the subject's rows
	reachForward              // the subject's rows reference it
	reachMention              // it only mentions the subject in a secondary contact column
)

type node struct {
	t     *CatalogTable
	reach reach
	main  *Listing
	masks []*Listing
	// next are the tables that match an identifier this one provides (for cycle checks).
	next []string
}

type proposer struct {
	d       sqlstore.Dialect
	cat     *Catalog
	known   map[string]bool
	nodes   map[string]*node
	order   []string
	idents  map[string]string // "table\x00column" -> identifier name
	used    map[string]bool
	notes   []string
	noted   map[string]bool
	fkFrom  map[string][]sqlstore.ForeignKey
	fkTo    map[string][]sqlstore.ForeignKey
	fkCols  map[string]bool // "table\x00folded column" of every key's either end
	idCols  map[string][]identifierColumn
	unknown map[string][]string // identifier -> "table.column" of kinds the Secret lacks
}

// Propose builds a mapping from the catalog.
func Propose(cat *Catalog, d sqlstore.Dialect, opts Options) (*Proposal, error) {
	known := opts.Known
	if len(known) == 0 {
		known = []string{IdentifierEmail}
	}
	p := &proposer{d: d, cat: cat, known: map[string]bool{}, nodes: map[string]*node{}, idents: map[string]string{},
		used: map[string]bool{}, noted: map[string]bool{}, fkFrom: map[string][]sqlstore.ForeignKey{},
		fkTo: map[string][]sqlstore.ForeignKey{}, fkCols: map[string]bool{}, idCols: map[string][]identifierColumn{},
		unknown: map[string][]string{}}
	for _, k := range known {
		p.known[k] = true
		p.used[k] = true
	}
	p.indexKeys()
	p.classify()
	roots := p.roots()
	if len(roots) == 0 {
		return nil, p.nothingToMatch(known)
	}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		queue = append(queue, p.followReferences(parent)...)
	}
	for _, name := range slices.Clone(p.order) {
		if n := p.nodes[name]; n.reach == reachRoot || n.reach == reachChain {
			p.followForward(name)
		}
	}
	p.secondaryContacts()
	p.indexWarnings()
	return p.result(), nil
}

func key(table, column string) string { return table + "\x00" + column }

func (p *proposer) indexKeys() {
	for _, fk := range p.cat.ForeignKeys {
		p.fkFrom[fk.From.Table] = append(p.fkFrom[fk.From.Table], fk)
		p.fkTo[fk.To.Table] = append(p.fkTo[fk.To.Table], fk)
		p.fkCols[key(fk.From.Table, fold(p.d, fk.FromColumn))] = true
		p.fkCols[key(fk.To.Table, fold(p.d, fk.ToColumn))] = true
	}
	for _, m := range []map[string][]sqlstore.ForeignKey{p.fkFrom, p.fkTo} {
		for _, fks := range m {
			sort.SliceStable(fks, func(i, j int) bool {
				return fks[i].From.Table+"."+fks[i].FromColumn < fks[j].From.Table+"."+fks[j].FromColumn
			})
		}
	}
}

// classify finds the identifier-like columns. A column that is a foreign key is a link, not an
// identifier: user_id referencing users.id is followed as a chain instead.
func (p *proposer) classify() {
	for _, t := range p.cat.Tables {
		for _, c := range t.Columns {
			if sqlstore.ValidateColumnName(c.Name) != nil || p.isForeignKeySource(t.Name, c.Name) {
				continue
			}
			ic, ok := classifyIdentifier(c)
			if !ok {
				continue
			}
			if !p.known[ic.identifier] {
				p.unknown[ic.identifier] = append(p.unknown[ic.identifier], t.Name+"."+c.Name)
				continue
			}
			p.idCols[t.Name] = append(p.idCols[t.Name], ic)
		}
	}
}

func (p *proposer) isForeignKeySource(table, column string) bool {
	for _, fk := range p.fkFrom[table] {
		if fold(p.d, fk.FromColumn) == fold(p.d, column) {
			return true
		}
	}
	return false
}

// roots are the tables with a column holding a known identifier as the row's own (not a
// secondary contact): their matching rows are the subject's.
func (p *proposer) roots() []string {
	var roots []string
	for _, t := range p.cat.Tables {
		var primary []identifierColumn
		for _, ic := range p.idCols[t.Name] {
			if !ic.secondary {
				primary = append(primary, ic)
			}
		}
		if len(primary) == 0 {
			continue
		}
		n := p.add(t, reachRoot, privacyv1alpha1.ActionDelete)
		for _, ic := range primary {
			p.addMatch(n, ic.column.Name, ic.identifier,
				fmt.Sprintf("column %s looks like the row's own %s (by name and type): a row holding the subject's %s is the subject's, deleted.",
					ic.column.Name, ic.identifier, ic.identifier))
		}
		roots = append(roots, t.Name)
	}
	return roots
}

func (p *proposer) add(t *CatalogTable, r reach, action privacyv1alpha1.TableAction) *node {
	n := &node{t: t, reach: r, main: &Listing{Mapping: privacyv1alpha1.TableMapping{Name: t.Name, Action: action}}}
	p.nodes[t.Name] = n
	p.order = append(p.order, t.Name)
	return n
}

func (p *proposer) addMatch(n *node, column, identifier, why string) {
	m := &n.main.Mapping
	for _, x := range m.Match {
		if fold(p.d, x.Column) == fold(p.d, column) && x.Identifier == identifier {
			return
		}
	}
	if len(m.Match) == maxMatches {
		n.main.Warnings = append(n.main.Warnings, fmt.Sprintf("column %s (%s) is not matched: a listing takes at most %d matches; list the table again for it",
			column, identifier, maxMatches))
		return
	}
	m.Match = append(m.Match, privacyv1alpha1.ColumnMatch{Column: column, Identifier: identifier})
	n.main.Why = append(n.main.Why, why)
}

// addProvide makes n provide identifier from column; false when the listing is full.
func (p *proposer) addProvide(n *node, column, identifier, why string) bool {
	m := &n.main.Mapping
	for _, x := range m.Provides {
		if fold(p.d, x.Column) == fold(p.d, column) && x.Identifier == identifier {
			return true
		}
	}
	if len(m.Provides) == maxProvides {
		n.main.Warnings = append(n.main.Warnings, fmt.Sprintf("column %s is not provided as %s: a listing takes at most %d provides",
			column, identifier, maxProvides))
		return false
	}
	m.Provides = append(m.Provides, privacyv1alpha1.ColumnProvide{Identifier: identifier, Column: column})
	n.main.Why = append(n.main.Why, why)
	return true
}

// identifierFor names the derived identifier of table.column, unique in the proposal and never a
// name of the identifiers Secret (whose values it would otherwise add to).
func (p *proposer) identifierFor(table, column string) string {
	k := key(table, fold(p.d, column))
	if name, ok := p.idents[k]; ok {
		return name
	}
	base := derivedName(table, column)
	name := base
	for i := 2; p.used[name]; i++ {
		name = fmt.Sprintf("%s%d", base, i)
	}
	p.used[name] = true
	p.idents[k] = name
	return name
}

// reaches reports whether table to is reachable from table from over provides -> match links.
func (p *proposer) reaches(from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(t string) bool {
		if t == to {
			return true
		}
		if seen[t] {
			return false
		}
		seen[t] = true
		n := p.nodes[t]
		return n != nil && slices.ContainsFunc(n.next, walk)
	}
	return walk(from)
}

func (p *proposer) note(text string) {
	if !p.noted[text] {
		p.noted[text] = true
		p.notes = append(p.notes, text)
	}
}
