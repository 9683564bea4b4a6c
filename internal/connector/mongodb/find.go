package mongodb

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Matching. A document matches a mapping when any match field holds (itself, or as an element of
// an array on its path) a value equal to one of the subject's values of that field's identifier.
// The server narrows the documents with a filter made of BSON values only (an exact $in, or for
// email and phone fields a case-insensitive $regex built with regexp.QuoteMeta), and every
// candidate is confirmed here in Go: exact text for exact fields, the normaliser's key for
// normalised ones. A value such as {"$ne": 1} or "$where" is a string in that filter, never an
// operator.

// separators are the characters people write phone numbers with; the phone prefilter allows
// any run of them between two digits.
const separators = `[\s\-().+/]*`

// emailPrefilter matches a stored address in any letter case with surrounding white space.
func emailPrefilter(raw, key string) string {
	cands := normalize.EmailCandidates(raw, key)
	quoted := make([]string, len(cands))
	for i, c := range cands {
		quoted[i] = quoteRegex(c)
	}
	return `^\s*(?:` + strings.Join(quoted, "|") + `)\s*$`
}

// phonePrefilter matches any stored spelling holding the number's national digits.
func phonePrefilter(key string) (string, bool) {
	digits, ok := normalize.PhoneDigits(key)
	if !ok {
		return "", false
	}
	return strings.Join(strings.Split(digits, ""), separators), true
}

// quoteRegex is regexp.QuoteMeta, with NUL written as an escape: a BSON regex is a C string.
func quoteRegex(s string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(s), "\x00", `\x00`)
}

// filterFor is the server-side filter narrowing m's documents to those that may match values;
// ok is false when the subject has no value of any of m's identifiers.
func (s *Store) filterFor(m *mapping, values connector.Values) (bson.D, bool) {
	var or bson.A
	for _, f := range m.match {
		var exact bson.A
		for _, v := range values[f.identifier] {
			if v == "" {
				continue
			}
			key, ok := s.norm.Normalize(f.kind, v)
			switch {
			case f.kind == normalize.Email && ok:
				or = append(or, bson.D{{Key: f.field, Value: bson.D{{Key: "$regex", Value: bson.Regex{Pattern: emailPrefilter(v, key), Options: "i"}}}}})
				continue
			case f.kind == normalize.Phone && ok:
				if pattern, ok := phonePrefilter(key); ok {
					or = append(or, bson.D{{Key: f.field, Value: bson.D{{Key: "$regex", Value: bson.Regex{Pattern: pattern}}}}})
					continue
				}
			}
			for _, b := range bsonValues(v) {
				exact = append(exact, b)
			}
		}
		if len(exact) > 0 {
			or = append(or, bson.D{{Key: f.field, Value: bson.D{{Key: "$in", Value: exact}}}})
		}
	}
	if len(or) == 0 {
		return nil, false
	}
	return bson.D{{Key: "$or", Value: or}}, true
}

// matches confirms that doc matches m through one of values.
func (s *Store) matches(m *mapping, doc bson.D, values connector.Values) bool {
	for _, f := range m.match {
		wanted := values[f.identifier]
		if len(wanted) == 0 {
			continue
		}
		for _, stored := range fieldValues(doc, f.field) {
			text, ok := identifierText(stored)
			if !ok {
				continue
			}
			for _, v := range wanted {
				if s.sameIdentifier(f.kind, text, v) {
					return true
				}
			}
		}
	}
	return false
}

// sameIdentifier compares a stored text with a subject's value: exactly, or by the normaliser's
// key when the value normalises under kind (one that does not only matches its own spelling).
func (s *Store) sameIdentifier(kind normalize.Kind, stored, value string) bool {
	if value == "" {
		return false
	}
	if kind == normalize.Exact {
		return stored == value
	}
	key, ok := s.norm.Normalize(kind, value)
	if !ok {
		return stored == value
	}
	return s.norm.Key(kind, stored) == key
}

// docSet is a set of documents by _id, in the order found.
type docSet struct {
	keys []string
	docs map[string]bson.D
}

func (d *docSet) add(doc bson.D) {
	key := idKey(doc)
	if d.docs == nil {
		d.docs = map[string]bson.D{}
	}
	if _, dup := d.docs[key]; !dup {
		d.keys = append(d.keys, key)
	}
	d.docs[key] = doc
}

func (d *docSet) has(key string) bool { _, ok := d.docs[key]; return ok }

func (d *docSet) len() int { return len(d.keys) }

// idKey identifies a document by its _id's canonical extended JSON (types included: the
// string "1" and the integer 1 are different ids).
func idKey(doc bson.D) string {
	for _, e := range doc {
		if e.Key == "_id" {
			b, err := bson.MarshalExtJSON(bson.D{{Key: "_id", Value: e.Value}}, true, false)
			if err == nil {
				return string(b)
			}
			return fmt.Sprintf("%T:%v", e.Value, e.Value)
		}
	}
	return ""
}

func idOf(doc bson.D) any {
	for _, e := range doc {
		if e.Key == "_id" {
			return e.Value
		}
	}
	return nil
}

// find returns m's documents matching values: whole for collect, otherwise only the top-level
// fields that hold m's match, provides and mask paths, so that erasing a subject with large
// documents does not read them whole. Their number is bounded by MaxDocuments: more is not one
// person's data but a mapping matching something else.
func (s *Store) find(ctx context.Context, m *mapping, values connector.Values, whole bool) (*docSet, error) {
	set := &docSet{}
	filter, ok := s.filterFor(m, values)
	if !ok {
		return set, nil
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	opts := options.Find()
	if !whole {
		opts.SetProjection(projection(m))
	}
	cur, err := s.coll(m).Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cur.Close(context.Background()) }()
	for cur.Next(ctx) {
		var doc bson.D
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		if !s.matches(m, doc, values) {
			continue
		}
		set.add(doc)
		if set.len() > s.opts.MaxDocuments {
			return nil, connector.Hinted(connector.KindMapping, "find",
				fmt.Sprintf("collection %s holds more than %d documents of one subject", m.location(), s.opts.MaxDocuments))
		}
	}
	return set, cur.Err()
}

// projection includes the top-level fields of m's paths (and _id, always returned).
func projection(m *mapping) bson.D {
	seen := map[string]bool{}
	var out bson.D
	add := func(path string) {
		top, _, _ := strings.Cut(path, ".")
		if !seen[top] {
			seen[top] = true
			out = append(out, bson.E{Key: top, Value: 1})
		}
	}
	for _, f := range m.match {
		add(f.field)
	}
	for _, p := range m.provides {
		add(p.Field)
	}
	for _, f := range m.mask {
		add(f.Field)
	}
	return out
}

// plan is what one mapping holds of the subject, after the same collection's mappings that
// outrank it took theirs (retain beats delete beats mask), and what it reaches only through
// shared values.
type plan struct {
	m      *mapping
	docs   *docSet
	shared int64
}

// planAll finds every mapping's documents of the subject (owned values) and counts those reached
// only through shared values.
func (s *Store) planAll(ctx context.Context, owned, shared connector.Values, whole bool) ([]*plan, error) {
	found := make([]*docSet, len(s.mappings))
	for i, m := range s.mappings {
		set, err := s.find(ctx, m, owned, whole)
		if err != nil {
			return nil, locate(err, m)
		}
		found[i] = set
	}
	plans := make([]*plan, len(s.mappings))
	for i, m := range s.mappings {
		p := &plan{m: m, docs: &docSet{}}
		for _, key := range found[i].keys {
			if !s.outranked(i, key, found) {
				p.docs.add(found[i].docs[key])
			}
		}
		if len(shared) > 0 && rank(m.action()) < rank("retain") {
			viaShared, err := s.find(ctx, m, shared, false)
			if err != nil {
				return nil, locate(err, m)
			}
			for _, key := range viaShared.keys {
				if !found[i].has(key) {
					p.shared++
				}
			}
		}
		plans[i] = p
	}
	return plans, nil
}

// outranked reports whether a mapping of the same collection with a higher rank holds the
// document: it is that mapping's.
func (s *Store) outranked(i int, key string, found []*docSet) bool {
	m := s.mappings[i]
	for j, other := range s.mappings {
		if j != i && other.name == m.name && rank(other.action()) > rank(m.action()) && found[j].has(key) {
			return true
		}
	}
	return false
}
