package discover

import (
	"fmt"
	"sort"
	"strings"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// followReferences follows the foreign keys that reference the subject's rows of parent: rows
// hanging off the subject's rows are the subject's too. parent provides the referenced column
// as a derived identifier and the referencing table matches its key column on it. It returns
// the tables newly reached.
func (p *proposer) followReferences(parent string) []string {
	pn := p.nodes[parent]
	var reached []string
	for _, fk := range p.fkTo[parent] {
		child := fk.From.Table
		if child == parent {
			p.note(fmt.Sprintf("table %s: foreign key %s (%s -> %s) refers to the same table and is not followed: the rows it points from are other people's (a referrer, a manager)",
				parent, fk.Name, fk.FromColumn, fk.ToColumn))
			continue
		}
		cn := p.nodes[child]
		if cn != nil && cn.reach != reachRoot && cn.reach != reachChain {
			continue
		}
		if cn != nil && p.reaches(child, parent) {
			cn.main.Warnings = append(cn.main.Warnings, fmt.Sprintf("foreign key %s (%s.%s -> %s.%s) is not followed: the identifier would be derived from itself, which the operator refuses",
				fk.Name, child, fk.FromColumn, parent, fk.ToColumn))
			continue
		}
		ident := p.identifierFor(parent, fk.ToColumn)
		if !p.addProvide(pn, fk.ToColumn, ident, fmt.Sprintf("%s of the subject's rows is provided as %s: table %s references it (foreign key %s).",
			fk.ToColumn, ident, child, fk.Name)) {
			continue
		}
		if cn == nil {
			cn = p.add(p.cat.Table(child), reachChain, privacyv1alpha1.ActionDelete)
			reached = append(reached, child)
		}
		p.addMatch(cn, fk.FromColumn, ident, fmt.Sprintf("%s references %s.%s (foreign key %s): rows hanging off the subject's %s rows are the subject's, deleted.",
			fk.FromColumn, parent, fk.ToColumn, fk.Name, parent))
		pn.next = append(pn.next, child)
	}
	return reached
}

// followForward follows the foreign keys of the subject's rows of table t to the rows they point
// at (an address, a profile). Those rows may be shared with other people: the operator leaves a
// row alone whose derived value another row also holds. A table referenced from several places is
// proposed as mask, so that what still points at a row keeps pointing at one; a table with no
// personal-looking column (a country, a product) is not mapped.
func (p *proposer) followForward(t string) {
	tn := p.nodes[t]
	for _, fk := range p.fkFrom[t] {
		target := fk.To.Table
		if target == t {
			continue
		}
		if n := p.nodes[target]; n != nil && n.reach != reachForward {
			continue
		}
		ct := p.cat.Table(target)
		if !p.hasPersonalColumn(ct) {
			p.note(fmt.Sprintf("table %s: the subject's %s rows point at it (%s.%s, foreign key %s), but no column of it looks personal: not mapped. Map it if it holds personal data.",
				target, t, t, fk.FromColumn, fk.Name))
			continue
		}
		if p.nodes[target] != nil && p.reaches(target, t) {
			continue
		}
		n := p.nodes[target]
		if n == nil {
			n = p.addForward(ct)
			if n == nil {
				continue
			}
		}
		ident := p.identifierFor(target, fk.ToColumn)
		if !p.addProvide(tn, fk.FromColumn, ident, fmt.Sprintf("%s points at the subject's %s rows: provided as %s (foreign key %s).",
			fk.FromColumn, target, ident, fk.Name)) {
			continue
		}
		p.addMatch(n, fk.ToColumn, ident, fmt.Sprintf("%s is what the subject's %s.%s points at (foreign key %s).", fk.ToColumn, t, fk.FromColumn, fk.Name))
		tn.next = append(tn.next, target)
	}
}

func (p *proposer) hasPersonalColumn(t *CatalogTable) bool {
	for _, c := range t.Columns {
		if !p.fkCols[key(t.Name, fold(p.d, c.Name))] && looksPersonal(c) {
			return true
		}
	}
	return false
}

// addForward lists a table the subject's rows point at: mask when several foreign keys reference
// it (rows the erasure keeps may still point at it), delete otherwise.
func (p *proposer) addForward(t *CatalogTable) *node {
	var from []string
	for _, fk := range p.fkTo[t.Name] {
		if fk.From.Table != t.Name {
			from = append(from, fk.From.Table+"."+fk.FromColumn)
		}
	}
	if len(from) < 2 {
		n := p.add(t, reachForward, privacyv1alpha1.ActionDelete)
		n.main.Why = append(n.main.Why, fmt.Sprintf("only %s references it: the subject's rows are deleted, after the rows pointing at them; one another person's row also points at is shared and kept.",
			strings.Join(from, ", ")))
		return n
	}
	var masks []privacyv1alpha1.ColumnMask
	var unmaskable []string
	for _, c := range t.Columns {
		if p.fkCols[key(t.Name, fold(p.d, c.Name))] || sqlstore.ValidateColumnName(c.Name) != nil {
			continue
		}
		if s, ok := maskStrategy(c); ok && len(masks) < maxMasks {
			masks = append(masks, privacyv1alpha1.ColumnMask{Column: c.Name, Strategy: s})
		} else if looksPersonal(c) {
			unmaskable = append(unmaskable, c.Name)
		}
	}
	if len(masks) == 0 {
		p.note(fmt.Sprintf("table %s: the subject's rows point at it, but none of its columns can be masked (NOT NULL and not text): not mapped", t.Name))
		return nil
	}
	n := p.add(t, reachForward, privacyv1alpha1.ActionMask)
	n.main.Mapping.Mask = masks
	n.main.Why = append(n.main.Why, fmt.Sprintf("referenced from %d places (%s): masked rather than deleted, so that the rows still pointing at it stay valid; a row another person's row also points at is shared and left alone.",
		len(from), strings.Join(from, ", ")))
	if len(unmaskable) > 0 {
		n.main.Warnings = append(n.main.Warnings, fmt.Sprintf("column(s) %s look personal but cannot be masked (NOT NULL, not text or too short)", strings.Join(unmaskable, ", ")))
	}
	return n
}

// maskStrategy picks how to mask a column: nullify what may be NULL, redact text that is not,
// hash text too short for the marker but long enough for a hash.
func maskStrategy(c sqlstore.Column) (privacyv1alpha1.MaskStrategy, bool) {
	switch {
	case c.Nullable:
		return privacyv1alpha1.MaskNullify, true
	case c.Text && (c.MaxLen == 0 || c.MaxLen >= len(privacyv1alpha1.RedactedMarker)):
		return privacyv1alpha1.MaskRedact, true
	case c.Text && c.MaxLen >= 64:
		return privacyv1alpha1.MaskHash, true
	}
	return "", false
}

// secondaryContacts lists a mask for every column holding someone else's contact (alt_email):
// where the subject is only the secondary contact on another person's row, the column is
// masked and the row kept. On the subject's own rows the delete wins (delete beats mask).
func (p *proposer) secondaryContacts() {
	for _, t := range p.cat.Tables {
		for _, ic := range p.idCols[t.Name] {
			if !ic.secondary {
				continue
			}
			s, ok := maskStrategy(ic.column)
			if !ok {
				p.note(fmt.Sprintf("table %s: column %s looks like a secondary contact's %s but cannot be masked (NOT NULL, too short): not mapped",
					t.Name, ic.column.Name, ic.identifier))
				continue
			}
			l := &Listing{Mapping: privacyv1alpha1.TableMapping{
				Name:   t.Name,
				Match:  []privacyv1alpha1.ColumnMatch{{Column: ic.column.Name, Identifier: ic.identifier}},
				Action: privacyv1alpha1.ActionMask,
				Mask:   []privacyv1alpha1.ColumnMask{{Column: ic.column.Name, Strategy: s}},
			}}
			l.Why = append(l.Why, fmt.Sprintf("column %s names a secondary contact (by its name): on another person's row where the subject is that contact, only the column is masked (%s); the subject's own rows are deleted above (delete beats mask).",
				ic.column.Name, s))
			n := p.nodes[t.Name]
			if n == nil {
				n = &node{t: t, reach: reachMention}
				p.nodes[t.Name] = n
				p.order = append(p.order, t.Name)
			}
			n.masks = append(n.masks, l)
		}
	}
}

// indexWarnings warns about matched and provided columns that no index leads: every request
// scans the table for them.
func (p *proposer) indexWarnings() {
	for _, name := range p.order {
		n := p.nodes[name]
		for _, l := range n.listings() {
			var cols []string
			for _, m := range l.Mapping.Match {
				cols = append(cols, m.Column)
			}
			for _, pr := range l.Mapping.Provides {
				cols = append(cols, pr.Column)
			}
			seen := map[string]bool{}
			for _, c := range cols {
				f := fold(p.d, c)
				if seen[f] || n.t.Indexed[f] {
					continue
				}
				seen[f] = true
				l.Warnings = append(l.Warnings, fmt.Sprintf("no index leads with column %s: every request scans table %s (CREATE INDEX ON %s (%s))",
					c, name, name, c))
			}
		}
	}
}

func (n *node) listings() []*Listing {
	var out []*Listing
	if n.main != nil {
		out = append(out, n.main)
	}
	return append(out, n.masks...)
}

func (p *proposer) result() *Proposal {
	res := &Proposal{Type: p.cat.Type}
	for _, name := range p.order {
		for _, l := range p.nodes[name].listings() {
			if len(res.Listings) == maxTables {
				p.note(fmt.Sprintf("table %s and later listings are left out: a DataStore takes at most %d; split the database over several DataStores", name, maxTables))
				break
			}
			res.Listings = append(res.Listings, l)
		}
	}
	for _, t := range p.cat.Tables {
		if p.nodes[t.Name] == nil && !p.mentioned(t.Name) {
			p.note(fmt.Sprintf("table %s: not mapped: no column of it looks like an identifier, and no foreign key links it to the subject's rows", t.Name))
		}
	}
	for _, id := range sortedKeys(p.unknown) {
		p.note(fmt.Sprintf("column(s) %s look like %s identifiers; the proposal does not match them because requests are assumed to carry no %s (add it with --identifiers, and to the requests' identifiers Secret)",
			strings.Join(p.unknown[id], ", "), id, id))
	}
	res.Notes = append(append([]string(nil), p.cat.Skipped...), p.notes...)
	return res
}

// mentioned: a note already says why the table is not mapped.
func (p *proposer) mentioned(table string) bool {
	for _, n := range p.notes {
		if strings.HasPrefix(n, "table "+table+":") {
			return true
		}
	}
	return false
}

func (p *proposer) nothingToMatch(known []string) error {
	msg := fmt.Sprintf("%v (looked for %s in %d tables)", ErrNothingToMatch, strings.Join(known, ", "), len(p.cat.Tables))
	for _, id := range sortedKeys(p.unknown) {
		msg += fmt.Sprintf("; %d column(s) look like %s: add it with --identifiers", len(p.unknown[id]), id)
	}
	return fmt.Errorf("%w", &proposalError{msg: msg})
}

type proposalError struct{ msg string }

func (e *proposalError) Error() string { return e.msg }
func (e *proposalError) Unwrap() error { return ErrNothingToMatch }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
