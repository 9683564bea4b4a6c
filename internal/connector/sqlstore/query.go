package sqlstore

import (
	"strings"
	"unicode/utf8"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// MinContainsRunes: deep verify looks for identifier values at least this long inside text;
// shorter ones ("7", "de") would be found in nearly every row, so they are compared for equality.
const MinContainsRunes = 4

// matchCond is "col1 = v1 OR col1 = v1' OR col2 = v2 ...", over every value of the match
// columns' identifiers whose type the column can hold; a normalised column compares with every
// stored spelling of each value that bind found (see match.go). ok is false when no such pair is
// left: the table cannot hold the subject's rows.
func (t *Table) matchCond(b *Builder, ids connector.Values) (string, bool) {
	var preds []string
	for i, m := range t.match {
		preds = append(preds, equalAny(t.d, b, m.col, m.quoted, t.matchValues(i, m, ids))...)
	}
	if len(preds) == 0 {
		return "", false
	}
	return "(" + strings.Join(preds, " OR ") + ")", true
}

// EqualAnyer is implemented by dialects whose Equal is a comparison an index serves refined by
// exact bytes ("col = x AND bytes(col) = bytes(x)"), which foldEqualities cannot fold: for several
// values they give the single "col IN (x, ...) AND bytes(col) IN (bytes(x), ...)", which selects
// the same rows (equal bytes imply the other equality) and keeps the statement flat, where
// thousands of ORed pairs would exceed SQLite's expression depth. ok false: use Equal per value.
type EqualAnyer interface {
	EqualAny(b *Builder, col Column, quoted string, values []string) (string, bool)
}

// equalAny is the predicates that compare col with any of values, as few as the dialect allows.
func equalAny(d Dialect, b *Builder, col Column, quoted string, values []string) []string {
	if ea, ok := d.(EqualAnyer); ok && len(values) > 1 {
		if p, ok := ea.EqualAny(b, col, quoted, values); ok {
			return []string{"(" + p + ")"}
		}
	}
	var preds []string
	for _, v := range values {
		if p, ok := d.Equal(b, col, quoted, v); ok {
			preds = append(preds, p)
		}
	}
	return foldEqualities(quoted, preds)
}

// foldEqualities turns the predicates "col = x1", "col = x2", ... of one column into the single
// "col IN (x1, x2, ...)", which the databases plan as one index lookup: a subject with 2,000
// derived order ids costs 3-15 ms instead of 0.4-0.8 s of OR terms (docs/benchmarks.md). It
// folds only when every predicate is exactly "col = <one operand>"; a compound one (a collation
// comparison refined by bytes) keeps the predicates as they are, parenthesised for OR.
func foldEqualities(quoted string, preds []string) []string {
	operands := make([]string, 0, len(preds))
	prefix := quoted + " = "
	for _, p := range preds {
		rhs, ok := strings.CutPrefix(p, prefix)
		if !ok || strings.Contains(rhs, " AND ") || strings.Contains(rhs, " OR ") || strings.Contains(rhs, "=") {
			operands = nil
			break
		}
		operands = append(operands, rhs)
	}
	if len(operands) > 1 {
		return []string{"(" + quoted + " IN (" + strings.Join(operands, ", ") + "))"}
	}
	out := make([]string, len(preds))
	for i, p := range preds {
		out[i] = "(" + p + ")"
	}
	return out
}

// maskedCond holds when column m already is in its masked state: NULL for every strategy (a
// NULL holds no personal data), the marker for redact, 64 lower-case hex digits for hash. Only
// rows where some masked column is not yet masked are rewritten, which makes mask idempotent and
// keeps hash from hashing its own output.
func (t *Table) maskedCond(b *Builder, m maskColumn) string {
	switch m.strategy {
	case privacyv1alpha1.MaskRedact:
		eq, _ := t.d.Equal(b, m.col, m.quoted, privacyv1alpha1.RedactedMarker)
		return "(" + m.quoted + " IS NULL OR (" + eq + "))"
	case privacyv1alpha1.MaskHash:
		return "(" + m.quoted + " IS NULL OR (" + t.d.LooksHashed(m.quoted) + "))"
	default:
		return "(" + m.quoted + " IS NULL)"
	}
}

// unmaskedCond holds when some masked column of the row is not yet masked.
func (t *Table) unmaskedCond(b *Builder) string {
	preds := make([]string, 0, len(t.mask))
	for _, m := range t.mask {
		preds = append(preds, t.maskedCond(b, m))
	}
	return "NOT (" + strings.Join(preds, " AND ") + ")"
}

// targetCond selects the rows an erasure still has to change (delete, mask) or keeps (retain).
func (t *Table) targetCond(b *Builder, ids connector.Values) (string, bool) {
	cond, ok := t.matchCond(b, ids)
	if !ok {
		return "", false
	}
	if t.Mapping.Action == privacyv1alpha1.ActionMask {
		cond += " AND " + t.unmaskedCond(b)
	}
	return cond + t.outrankedCond(b, ids), true
}

// CountQuery counts the rows the action still applies to: matching rows for delete and retain,
// matching rows with a column not yet masked for mask. After a successful erasure it is 0 for
// delete and mask tables, which is what verify checks. ok is false when the table cannot hold the
// subject's rows.
func (t *Table) CountQuery(ids connector.Values) (Query, bool) {
	b := NewBuilder(t.d)
	cond, ok := t.targetCond(b, ids)
	if !ok {
		return Query{}, false
	}
	return b.query("SELECT COUNT(*) FROM " + t.quoted + " WHERE " + cond), true
}

// SelectQuery reads every column of the subject's rows.
func (t *Table) SelectQuery(ids connector.Values) (Query, bool) {
	b := NewBuilder(t.d)
	cond, ok := t.matchCond(b, ids)
	if !ok {
		return Query{}, false
	}
	return b.query("SELECT * FROM " + t.quoted + " WHERE " + cond), true
}

// DeleteQuery deletes at most limit (0: all) of the subject's rows.
func (t *Table) DeleteQuery(ids connector.Values, limit int) (Query, bool) {
	b := NewBuilder(t.d)
	cond, ok := t.targetCond(b, ids)
	if !ok {
		return Query{}, false
	}
	return b.query(t.d.Delete(t.quoted, cond, limit)), true
}

// MaskQuery masks at most limit (0: all) of the subject's rows that are not yet masked. Each
// column keeps its value when it is already masked, so a hash is never hashed again.
func (t *Table) MaskQuery(ids connector.Values, salt []byte, limit int) (Query, bool) {
	if len(t.mask) == 0 {
		return Query{}, false
	}
	b := NewBuilder(t.d)
	sets := make([]string, 0, len(t.mask))
	for _, m := range t.mask {
		if m.strategy == privacyv1alpha1.MaskNullify {
			sets = append(sets, m.quoted+" = NULL")
			continue
		}
		done := t.maskedCond(b, m)
		var value string
		if m.strategy == privacyv1alpha1.MaskHash {
			value = t.d.Hash(b, m.quoted, salt)
		} else {
			value = b.Arg(privacyv1alpha1.RedactedMarker)
		}
		sets = append(sets, m.quoted+" = CASE WHEN "+done+" THEN "+m.quoted+" ELSE "+t.d.AsColumnText(m.col, value)+" END")
	}
	cond, ok := t.targetCond(b, ids)
	if !ok {
		return Query{}, false
	}
	return b.query(t.d.Update(t.quoted, strings.Join(sets, ", "), cond, limit)), true
}

// DeepQuery counts, per searched column, the rows whose text equals or contains one of values.
// It searches every searchable column except the match columns a mask table keeps on purpose
// (they identify the row by design). ok is false when nothing is searched.
// folded values (lower case) are also searched for in any letter case in text columns.
func (t *Table) DeepQuery(values, folded []string) (Query, []Column, bool) {
	return t.deepQuery(values, folded, nil)
}

// deepQuery is DeepQuery searching each column only for the values allow admits there (nil: all).
func (t *Table) deepQuery(values, folded []string, allow func(column, v string) bool) (Query, []Column, bool) {
	kept := map[string]bool{}
	if t.Mapping.Action == privacyv1alpha1.ActionMask {
		for _, m := range t.match {
			kept[m.col.Name] = true
		}
		for _, m := range t.mask {
			delete(kept, m.col.Name)
		}
	}
	b := NewBuilder(t.d)
	var exprs []string
	var searched []Column
	for _, c := range t.columns {
		if !c.Searchable || kept[c.Name] {
			continue
		}
		// Unmapped columns come from the catalog, not the spec, so they may carry names the spec
		// pattern refuses ("Full Name"); skipping them would hide data, and the dialect's quoting
		// (quote doubling) is complete for any name a catalog can hold.
		quoted := t.d.QuoteIdent(c.Name)
		var preds []string
		for _, v := range values {
			if v == "" || (allow != nil && !allow(c.Name, v)) {
				continue
			}
			var p string
			var ok bool
			if utf8.RuneCountInString(v) >= MinContainsRunes {
				p, ok = t.d.Contains(b, c, quoted, v)
			} else {
				p, ok = t.d.Equal(b, c, quoted, v)
			}
			if ok {
				preds = append(preds, "("+p+")")
			}
		}
		if c.Text {
			for _, v := range folded {
				if utf8.RuneCountInString(v) >= MinContainsRunes && (allow == nil || allow(c.Name, v)) {
					preds = append(preds, "("+foldedContains(b, quoted, v)+")")
				}
			}
		}
		if len(preds) == 0 {
			continue
		}
		exprs = append(exprs, "COUNT(CASE WHEN "+strings.Join(preds, " OR ")+" THEN 1 END)")
		searched = append(searched, c)
	}
	if len(exprs) == 0 {
		return Query{}, nil, false
	}
	return b.query("SELECT " + strings.Join(exprs, ", ") + " FROM " + t.quoted), searched, true
}
