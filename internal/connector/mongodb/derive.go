package mongodb

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// maxDeriveRounds bounds the rounds of "derive, then set shared values aside", as in the SQL
// stores.
const maxDeriveRounds = 16

// Derive reads the provides fields of the subject's documents (those matched by delete and
// retain mappings: a mask mapping matches someone else's document the subject only appears in),
// following this store's provides/match links until nothing new is found. A value that a
// document which is not the subject's also holds in a provides field is shared: it is set aside
// and the derivation runs again without it. It changes nothing.
func (s *Store) Derive(ctx context.Context, req connector.Request) (*connector.Derivation, error) {
	const op = "derive"
	given := req.AllValues()
	shared := req.Shared.Clone()
	if shared == nil {
		shared = connector.Values{}
	}
	for round := 0; ; round++ {
		derived, err := s.deriveOnce(ctx, given, shared)
		if err != nil {
			return nil, s.fail(op, err, req)
		}
		owned := given.Clone()
		owned.Merge(derived)
		found, err := s.sharedValues(ctx, derived, owned)
		if err != nil {
			return nil, s.fail(op, err, req)
		}
		if found.Count() == 0 || round == maxDeriveRounds {
			return &connector.Derivation{Values: derived, Shared: shared}, nil
		}
		shared.Merge(found)
	}
}

func (s *Store) deriveOnce(ctx context.Context, given, shared connector.Values) (connector.Values, error) {
	derived := connector.NewValueSet(nil)
	givenSet, aside := connector.NewValueSet(given), connector.NewValueSet(shared)
	for {
		known := given.Clone()
		known.MergeDisjoint(derived.Values()) // nothing given is derived
		added := 0
		for _, m := range s.mappings {
			if len(m.provides) == 0 || m.action() == privacyv1alpha1.ActionMask {
				continue
			}
			docs, err := s.find(ctx, m, known, false)
			if err != nil {
				return nil, locate(err, m)
			}
			for _, key := range docs.keys {
				for _, p := range m.provides {
					for _, v := range fieldValues(docs.docs[key], p.Field) {
						text, ok := identifierText(v)
						if ok && !aside.Has(p.Identifier, text) && !givenSet.Has(p.Identifier, text) && derived.Add(p.Identifier, text) {
							added++
						}
					}
				}
			}
		}
		if added == 0 {
			return derived.Values(), nil
		}
	}
}

// sharedValues finds the derived values that a document which is not the subject's also holds
// in a provides field. The subject's documents of a collection are those its delete and retain
// mappings match with the owned values.
func (s *Store) sharedValues(ctx context.Context, derived, owned connector.Values) (connector.Values, error) {
	shared := connector.Values{}
	for _, holder := range s.mappings {
		for _, p := range holder.provides {
			values := derived[p.Identifier]
			if len(values) == 0 {
				continue
			}
			found, err := s.heldByOthers(ctx, holder, p.Field, values, owned)
			if err != nil {
				return nil, locate(err, holder)
			}
			shared.Add(p.Identifier, found...)
		}
	}
	return shared, nil
}

func (s *Store) heldByOthers(ctx context.Context, holder *mapping, field string, values []string, owned connector.Values) ([]string, error) {
	var in bson.A
	for _, v := range values {
		for _, b := range bsonValues(v) {
			in = append(in, b)
		}
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	cur, err := s.coll(holder).Find(ctx, bson.D{{Key: field, Value: bson.D{{Key: "$in", Value: in}}}})
	if err != nil {
		return nil, err
	}
	defer func() { _ = cur.Close(context.Background()) }()
	wanted := map[string]bool{}
	for _, v := range values {
		wanted[v] = true
	}
	var held []string
	seen := map[string]bool{}
	for cur.Next(ctx) {
		var doc bson.D
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		if s.subjectsDocument(holder.name, doc, owned) {
			continue
		}
		for _, v := range fieldValues(doc, field) {
			if text, ok := identifierText(v); ok && wanted[text] && !seen[text] {
				seen[text] = true
				held = append(held, text)
			}
		}
	}
	return held, cur.Err()
}

// subjectsDocument reports whether a delete or retain mapping of the collection matches doc with
// the owned values.
func (s *Store) subjectsDocument(name collectionName, doc bson.D, owned connector.Values) bool {
	for _, m := range s.mappings {
		if m.name == name && m.action() != privacyv1alpha1.ActionMask && s.matches(m, doc, owned) {
			return true
		}
	}
	return false
}
