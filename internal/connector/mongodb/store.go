package mongodb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Store is the connector.Client of type mongodb.
type Store struct {
	client   *mongo.Client
	mappings []*mapping
	salt     []byte
	opts     Options
	timeout  time.Duration
	norm     normalize.Normalizer
	txn      txnSupport
	// deepScope says whether deep verification also searches outside the mapping (unmapped.go).
	deepScope privacyv1alpha1.DeepScope
	dialer    *dialer
}

var (
	_ connector.Client  = (*Store)(nil)
	_ connector.Deriver = (*Store)(nil)
)

// opCtx bounds one server operation by the connection timeout; the caller's ctx bounds the whole.
func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) coll(m *mapping) *mongo.Collection {
	return s.client.Database(m.name.database).Collection(m.name.collection)
}

func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	return s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

// fail classifies err (see dialer.fail).
func (s *Store) fail(op string, err error, req connector.Request) error {
	return s.dialer.fail(op, err, req)
}

// Close disconnects the client.
func (s *Store) Close() error { return s.client.Disconnect(context.Background()) }

// Check pings the server, checks that every mapped collection exists, and warns about match
// fields without an index (every erasure then scans the collection).
func (s *Store) Check(ctx context.Context) (*connector.CheckResult, error) {
	const op = "check"
	if err := s.ping(ctx); err != nil {
		return nil, s.fail(op, err, connector.Request{})
	}
	res := &connector.CheckResult{}
	var problems []string
	checked := map[collectionName]bool{}
	for _, m := range s.mappings {
		if checked[m.name] {
			continue
		}
		checked[m.name] = true
		octx, cancel := s.opCtx(ctx)
		names, err := s.client.Database(m.name.database).ListCollectionNames(octx, bson.D{{Key: "name", Value: m.name.collection}})
		cancel()
		if err != nil {
			return nil, s.fail(op, locate(err, m), connector.Request{})
		}
		if len(names) == 0 {
			problems = append(problems, fmt.Sprintf("collection %s does not exist", m.location()))
			continue
		}
		w, err := s.indexWarnings(ctx, m)
		if err != nil {
			return nil, s.fail(op, locate(err, m), connector.Request{})
		}
		res.Warnings = append(res.Warnings, w...)
	}
	if len(problems) > 0 {
		return nil, connector.Hinted(connector.KindMapping, op, joinProblems(problems))
	}
	return res, nil
}

func joinProblems(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += "; "
		}
		out += s
	}
	return out
}

// indexWarnings names the match fields of the collection that lead no index.
func (s *Store) indexWarnings(ctx context.Context, m *mapping) ([]string, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	cur, err := s.coll(m).Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cur.Close(context.Background()) }()
	leading := map[string]bool{}
	for cur.Next(ctx) {
		var idx struct {
			Key bson.D `bson:"key"`
		}
		if err := cur.Decode(&idx); err != nil {
			return nil, err
		}
		if len(idx.Key) > 0 {
			leading[idx.Key[0].Key] = true
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	var warnings []string
	for _, other := range s.mappings {
		if other.name != m.name {
			continue
		}
		for _, f := range other.match {
			if !leading[f.field] {
				leading[f.field] = true
				warnings = append(warnings, fmt.Sprintf("field %s of collection %s has no index: erasure scans the collection", f.field, m.location()))
			}
		}
	}
	return warnings, nil
}

// Collect returns every document the mapping attributes to the subject, retained ones included,
// each once, as relaxed extended JSON.
func (s *Store) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	return connector.CollectAll(ctx, s, req)
}

// CollectTo hands each document to emit as soon as it is converted (connector.CollectStreamer):
// the plans hold the subject's documents, but not a second copy of them as records.
func (s *Store) CollectTo(ctx context.Context, req connector.Request, emit func(connector.Record) error) (bool, error) {
	const op = "collect"
	plans, err := s.planAll(ctx, req.AllValues(), nil, true)
	if err != nil {
		return false, s.fail(op, err, req)
	}
	seen := map[string]bool{}
	for _, p := range plans {
		for _, key := range p.docs.keys {
			if seen[p.m.location()+"\x00"+key] {
				continue
			}
			seen[p.m.location()+"\x00"+key] = true
			doc := p.docs.docs[key]
			data, err := jsonData(doc)
			if err != nil {
				return false, s.fail(op, locate(err, p.m), req)
			}
			rec := connector.Record{Location: p.m.location(), Data: data}
			if text, ok := identifierText(idOf(doc)); ok {
				rec.Key = text
			}
			if err := emit(rec); err != nil {
				return false, err // the caller's own error
			}
		}
	}
	return false, nil
}

// jsonData is a document as relaxed extended JSON, decoded into plain values for the export.
func jsonData(doc bson.D) (map[string]any, error) {
	b, err := bson.MarshalExtJSON(doc, false, false)
	if err != nil {
		return nil, err
	}
	var data map[string]any
	return data, json.Unmarshal(b, &data)
}

// Verify counts what still identifies the subject where the mapping says it must not: documents
// of delete mappings, documents of mask mappings with a masked field not in its masked state;
// retained documents count as retained and documents reached only through shared values as
// shared. With req.Deep it also searches every string of the delete and mask collections (deep.go).
func (s *Store) Verify(ctx context.Context, req connector.Request) (*connector.VerifyResult, error) {
	const op = "verify"
	owned := req.AllValues()
	plans, err := s.planAll(ctx, owned, req.Shared, false)
	if err != nil {
		return nil, s.fail(op, err, req)
	}
	res := &connector.VerifyResult{}
	for _, p := range plans {
		n := s.pending(p)
		if p.shared > 0 {
			res.Shared += p.shared
			res.SharedLocations = addCount(res.SharedLocations, p.m.location(), p.shared, "")
		}
		if n == 0 {
			continue
		}
		if p.m.action() == privacyv1alpha1.ActionRetain {
			res.Retained += n
			res.RetainedLocations = addCount(res.RetainedLocations, p.m.location(), n, p.m.spec.RetainReason)
		} else {
			res.Remaining += n
			res.RemainingLocations = addCount(res.RemainingLocations, p.m.location(), n, "")
		}
	}
	if req.Deep {
		found, err := s.deepSearch(ctx, plans, owned)
		if err != nil {
			return nil, s.fail(op, err, req)
		}
		for _, loc := range found {
			res.Remaining += loc.Records
			res.RemainingLocations = append(res.RemainingLocations, loc)
		}
		if s.deepScope == privacyv1alpha1.DeepScopeDatabase {
			if res.Unmapped, res.UnmappedLocations, err = s.searchUnmapped(ctx, owned); err != nil {
				return nil, s.fail(op, err, req)
			}
		}
	}
	return res, nil
}

// pending is how many of p's documents the action still applies to: all of them for delete and
// retain, those with a masked field not yet in its masked state for mask.
func (s *Store) pending(p *plan) int64 {
	if p.m.action() != privacyv1alpha1.ActionMask {
		return int64(p.docs.len())
	}
	var n int64
	for _, key := range p.docs.keys {
		if needsMask(p.m, p.docs.docs[key]) {
			n++
		}
	}
	return n
}

// addCount adds n records at location, merging with an entry of the same location and reason.
func addCount(list []connector.LocationCount, location string, n int64, reason string) []connector.LocationCount {
	for i := range list {
		if list[i].Location == location && list[i].Reason == reason {
			list[i].Records += n
			return list
		}
	}
	return append(list, connector.LocationCount{Location: location, Records: n, Reason: reason})
}
