package mongodb

import (
	"context"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Erase deletes and masks the subject's documents and counts the retained and shared ones.
//
// On a replica set or sharded MongoDB an erasure of at most Options.MaxAtomicDocuments documents
// is one transaction (txn.go). FerretDB and a standalone MongoDB have no multi-document
// transactions, and a larger erasure would hold one for too long, so there it is a sequence of
// single-document changes in a fixed order (doc.go): every delete and every masked document is
// atomic on its own, and the mappings that provide identifiers go last, so that an erasure cut
// short leaves the documents that lead to the rest in place and the next Erase, deriving again,
// finds and finishes everything.
func (s *Store) Erase(ctx context.Context, req connector.Request) (*connector.EraseResult, error) {
	const op = "erase"
	owned := req.AllValues()
	plans, err := s.planAll(ctx, owned, req.Shared, false)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	res := &connector.EraseResult{}
	for _, p := range plans {
		if p.shared > 0 {
			res.Shared += p.shared
			res.SharedLocations = addCount(res.SharedLocations, p.m.location(), p.shared, "")
		}
		n := s.pending(p)
		if n == 0 {
			continue
		}
		switch p.m.action() {
		case privacyv1alpha1.ActionRetain:
			res.Retained += n
			res.RetainedLocations = addCount(res.RetainedLocations, p.m.location(), n, p.m.spec.RetainReason)
		case privacyv1alpha1.ActionDelete:
			res.Erased += n
		case privacyv1alpha1.ActionMask:
			res.Masked += n
		}
	}
	if req.DryRun {
		return res, nil
	}
	total := res.Erased + res.Masked
	res.Erased, res.Masked = 0, 0
	if total == 0 {
		return res, nil
	}
	useTxn, err := s.transactional(ctx)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	if useTxn && total <= int64(s.opts.MaxAtomicDocuments) {
		err = s.applyInTransaction(ctx, plans, owned, res)
	} else {
		err = s.applyInOrder(ctx, plans, owned, res)
	}
	if err != nil {
		s.txn.forget()
		return nil, s.fail(op, err, req)
	}
	return res, nil
}

// eraseOrder puts the mappings that provide an identifier after every mapping that matches on
// it (the orders before the customer whose _id leads to them), keeping spec order otherwise.
func (s *Store) eraseOrder(plans []*plan) []*plan {
	level := make([]int, len(plans))
	var depth func(i, guard int) int
	depth = func(i, guard int) int {
		if guard > len(plans) {
			return 0 // a cycle of provides and matches: stop rather than loop
		}
		best := 0
		for j, other := range plans {
			if j != i && consumes(other.m, plans[i].m) {
				if d := depth(j, guard+1) + 1; d > best {
					best = d
				}
			}
		}
		return best
	}
	for i := range plans {
		level[i] = depth(i, 0)
	}
	order := make([]int, len(plans))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return level[order[a]] < level[order[b]] })
	out := make([]*plan, len(plans))
	for i, idx := range order {
		out[i] = plans[idx]
	}
	return out
}

// consumes reports whether m matches on an identifier provider provides.
func consumes(m, provider *mapping) bool {
	for _, p := range provider.provides {
		for _, f := range m.match {
			if f.identifier == p.Identifier {
				return true
			}
		}
	}
	return false
}

// deleteDocs deletes p's documents in batches by _id, each batch also re-checking the match
// filter, so that a document changed meanwhile to no longer be the subject's is left alone.
func (s *Store) deleteDocs(ctx context.Context, p *plan, owned connector.Values) (int64, error) {
	filter, ok := s.filterFor(p.m, owned)
	if !ok || p.docs.len() == 0 {
		return 0, nil
	}
	var done int64
	keys := p.docs.keys
	for start := 0; start < len(keys); start += s.opts.BatchSize {
		end := min(start+s.opts.BatchSize, len(keys))
		ids := make(bson.A, 0, end-start)
		for _, key := range keys[start:end] {
			ids = append(ids, idOf(p.docs.docs[key]))
		}
		octx, cancel := s.opCtx(ctx)
		r, err := s.coll(p.m).DeleteMany(octx, bson.D{{Key: "$and", Value: bson.A{
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
			filter,
		}}})
		cancel()
		if err != nil {
			return done, err
		}
		done += r.DeletedCount
		if s.opts.AfterWrite != nil {
			s.opts.AfterWrite(p.m.location())
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
	}
	return done, nil
}

// maskDocs rewrites the masked fields of each of p's documents not yet masked, one update per
// document, setting the top-level fields that hold them.
func (s *Store) maskDocs(ctx context.Context, p *plan) (int64, error) {
	var done int64
	for _, key := range p.docs.keys {
		doc := p.docs.docs[key]
		if !needsMask(p.m, doc) {
			continue
		}
		set := s.maskedFields(p.m, doc)
		octx, cancel := s.opCtx(ctx)
		r, err := s.coll(p.m).UpdateOne(octx, bson.D{{Key: "_id", Value: idOf(doc)}}, bson.D{{Key: "$set", Value: set}})
		cancel()
		if err != nil {
			return done, err
		}
		done += r.ModifiedCount
		if s.opts.AfterWrite != nil {
			s.opts.AfterWrite(p.m.location())
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
	}
	return done, nil
}

// needsMask reports whether some masked field of doc holds a value not in its masked state.
func needsMask(m *mapping, doc bson.D) bool {
	for _, f := range m.mask {
		for _, v := range fieldValues(doc, f.Field) {
			if !masked(f.Strategy, v) {
				return true
			}
		}
	}
	return false
}

// maskedFields is the $set of doc's top-level fields that hold a masked field, rewritten.
func (s *Store) maskedFields(m *mapping, doc bson.D) bson.D {
	work := map[string]any{}
	var order []string
	for _, f := range m.mask {
		parts := strings.Split(f.Field, ".")
		top := parts[0]
		cur, seen := work[top]
		if !seen {
			var present bool
			for _, e := range doc {
				if e.Key == top {
					cur, present = e.Value, true
				}
			}
			if !present {
				continue
			}
			order = append(order, top)
		}
		work[top] = s.rewrite(cur, parts[1:], f.Strategy)
	}
	set := bson.D{}
	for _, top := range order {
		set = append(set, bson.E{Key: top, Value: work[top]})
	}
	return set
}

// rewrite masks the value at path rest below v, element by element through arrays.
func (s *Store) rewrite(v any, rest []string, strategy privacyv1alpha1.MaskStrategy) any {
	if len(rest) == 0 {
		if strategy == privacyv1alpha1.MaskNullify {
			return nil
		}
		if arr, ok := v.(bson.A); ok {
			out := make(bson.A, len(arr))
			for i, el := range arr {
				out[i] = s.maskValue(el, strategy)
			}
			return out
		}
		return s.maskValue(v, strategy)
	}
	switch x := v.(type) {
	case bson.D:
		out := make(bson.D, len(x))
		copy(out, x)
		for i, e := range out {
			if e.Key == rest[0] {
				out[i].Value = s.rewrite(e.Value, rest[1:], strategy)
			}
		}
		return out
	case bson.A:
		out := make(bson.A, len(x))
		for i, el := range x {
			if d, ok := el.(bson.D); ok {
				out[i] = s.rewrite(d, rest, strategy)
			} else {
				out[i] = el
			}
		}
		return out
	default:
		return v
	}
}

func (s *Store) maskValue(v any, strategy privacyv1alpha1.MaskStrategy) any {
	if masked(strategy, v) {
		return v
	}
	if strategy == privacyv1alpha1.MaskRedact {
		return privacyv1alpha1.RedactedMarker
	}
	text, ok := identifierText(v)
	if !ok {
		b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, true, false)
		if err != nil {
			return nil
		}
		text = string(b)
	}
	return hashText(s.salt, text)
}
