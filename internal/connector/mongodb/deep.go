package mongodb

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// MinContainsRunes: deep verification looks for values at least this long inside strings;
// shorter ones only count when a string equals them (as in the SQL stores).
const MinContainsRunes = 4

// deepValues are what deep verification looks for: every value of the subject, the normalised
// forms of values of normalised match fields, and (folded) email spellings in any letter case.
// With only, the values of those identifiers alone.
func (s *Store) deepValues(owned connector.Values, only ...string) (values, folded []string) {
	plain, fold := map[string]bool{}, map[string]bool{}
	wanted := func(name string) bool { return len(only) == 0 || slices.Contains(only, name) }
	for _, name := range owned.Names() {
		if !wanted(name) {
			continue
		}
		for _, v := range owned[name] {
			plain[v] = true
		}
	}
	for _, m := range s.mappings {
		for _, f := range m.match {
			if f.kind == normalize.Exact || !wanted(f.identifier) {
				continue
			}
			for _, raw := range owned[f.identifier] {
				key, ok := s.norm.Normalize(f.kind, raw)
				if raw == "" || !ok {
					continue
				}
				plain[key] = true
				if f.kind == normalize.Email {
					for _, c := range normalize.EmailCandidates(raw, key) {
						fold[normalize.FoldCase(c)] = true
					}
				}
			}
		}
	}
	for v := range plain {
		if v != "" {
			values = append(values, v)
		}
	}
	for v := range fold {
		folded = append(folded, v)
	}
	sort.Strings(values)
	sort.Strings(folded)
	return values, folded
}

// deepSearch scans every document of the collections of delete and mask mappings for strings
// that equal or contain a value of the subject, and counts documents per field path, reported as
// "<database>.<collection> (deep: <path>)". The match fields a mask mapping keeps on purpose are
// not searched. It reads each collection in full.
func (s *Store) deepSearch(ctx context.Context, plans []*plan, owned connector.Values) ([]connector.LocationCount, error) {
	values, folded := s.deepValues(owned)
	if len(values) == 0 {
		return nil, nil
	}
	kept := map[collectionName]map[string]bool{}
	var colls []*mapping
	for _, p := range plans {
		if p.m.action() == privacyv1alpha1.ActionRetain {
			continue
		}
		if _, ok := kept[p.m.name]; !ok {
			kept[p.m.name] = map[string]bool{}
			colls = append(colls, p.m)
		}
		if p.m.action() == privacyv1alpha1.ActionMask {
			for _, f := range p.m.match {
				kept[p.m.name][f.field] = true
			}
		}
	}
	for _, p := range plans {
		for _, f := range p.m.mask {
			delete(kept[p.m.name], f.Field)
		}
	}
	// A match field is searched for its own identifiers' values only: a bystander's customerId
	// "11" is not the subject's orderId "11", and would otherwise stay "remaining" for ever.
	matchedBy := map[collectionName]map[string][]string{}
	for _, p := range plans {
		if matchedBy[p.m.name] == nil {
			matchedBy[p.m.name] = map[string][]string{}
		}
		for _, f := range p.m.match {
			matchedBy[p.m.name][f.field] = append(matchedBy[p.m.name][f.field], f.identifier)
		}
	}
	var out []connector.LocationCount
	for _, m := range colls {
		own := map[string]searchValues{}
		for field, names := range matchedBy[m.name] {
			v, f := s.deepValues(owned, names...)
			own[field] = searchValues{v, f}
		}
		counts, err := s.deepScan(ctx, m, kept[m.name], searchValues{values, folded}, own)
		if err != nil {
			return nil, locate(err, m)
		}
		paths := make([]string, 0, len(counts))
		for p := range counts {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			out = append(out, connector.LocationCount{Location: fmt.Sprintf("%s (deep: %s)", m.location(), p), Records: counts[p]})
		}
	}
	return out, nil
}

// searchValues are what one field is searched for.
type searchValues struct{ values, folded []string }

func (s *Store) deepScan(ctx context.Context, m *mapping, kept map[string]bool, all searchValues, own map[string]searchValues) (map[string]int64, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	cur, err := s.coll(m).Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	defer func() { _ = cur.Close(context.Background()) }()
	counts := map[string]int64{}
	for cur.Next(ctx) {
		var doc bson.D
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		hits := map[string]bool{}
		walkStrings(doc, "", func(path, text string) {
			search, ok := own[path]
			if !ok {
				search = all
			}
			if !kept[path] && !hits[path] && holdsValue(text, search.values, search.folded) {
				hits[path] = true
			}
		})
		for p := range hits {
			counts[p]++
		}
	}
	return counts, cur.Err()
}

// walkStrings calls fn with every string in v and its dotted path (array positions left out).
func walkStrings(v any, path string, fn func(path, text string)) {
	switch x := v.(type) {
	case string:
		fn(path, x)
	case bson.D:
		for _, e := range x {
			walkStrings(e.Value, joinPath(path, e.Key), fn)
		}
	case bson.M:
		for k, el := range x {
			walkStrings(el, joinPath(path, k), fn)
		}
	case bson.A:
		for _, el := range x {
			walkStrings(el, path, fn)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func holdsValue(text string, values, folded []string) bool {
	for _, v := range values {
		if text == v || (utf8.RuneCountInString(v) >= MinContainsRunes && strings.Contains(text, v)) {
			return true
		}
	}
	if len(folded) > 0 {
		lower := normalize.FoldCase(text)
		for _, v := range folded {
			if strings.Contains(lower, v) {
				return true
			}
		}
	}
	return false
}
