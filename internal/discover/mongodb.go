package discover

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// MongoSampleSize is how many documents of each collection discover reads to see its fields.
// MongoDB has no schema: a field that none of them holds is not seen.
const MongoSampleSize = 200

var (
	mongoFieldPattern      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	mongoCollectionPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// MongoProposal is a proposed spec.collections with the reasons for it.
type MongoProposal struct {
	Listings []*MongoListing
	Notes    []string
}

// MongoListing is one proposed spec.collections entry.
type MongoListing struct {
	Mapping privacyv1alpha1.CollectionMapping
	Why     []string
}

// fieldKinds is what the sample held at one path.
type fieldKinds struct{ text, integer, objectID bool }

// DiscoverMongo reads the collections of the URI's database (or of every database but admin,
// local and config when the URI names none) and a sample of each one's documents, and proposes
// a mapping on the fields named like the known identifiers. It prints no value it read.
func DiscoverMongo(ctx context.Context, uri string, opts Options) (*MongoProposal, error) {
	cs, err := connstring.ParseAndValidate(strings.TrimSpace(uri))
	if err != nil {
		return nil, errors.New("the connection string is not a valid MongoDB URI")
	}
	client, err := mongo.Connect(options.Client().ApplyURI(strings.TrimSpace(uri)).SetServerSelectionTimeout(15 * time.Second))
	if err != nil {
		return nil, errors.New("the connection string is not a usable MongoDB URI")
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	databases := []string{cs.Database}
	if cs.Database == "" {
		names, err := client.ListDatabaseNames(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("list databases: %s", mongoSummary(err))
		}
		databases = slices.DeleteFunc(names, func(n string) bool { return n == "admin" || n == "local" || n == "config" })
	}
	sort.Strings(databases)
	samples := map[string]map[string]*fieldKinds{}
	var order []string
	for _, dbName := range databases {
		colls, err := client.Database(dbName).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("list collections: %s", mongoSummary(err))
		}
		sort.Strings(colls)
		for _, c := range colls {
			if strings.HasPrefix(c, "system.") {
				continue
			}
			fields, err := sampleFields(ctx, client.Database(dbName).Collection(c))
			if err != nil {
				return nil, fmt.Errorf("read a sample: %s", mongoSummary(err))
			}
			name := dbName + "." + c
			samples[name] = fields
			order = append(order, name)
		}
	}
	p := proposeMongo(order, samples, opts)
	if len(p.Listings) == 0 {
		return nil, fmt.Errorf("%w (looked in the sampled documents of %d collections)", ErrNothingToMatch, len(order))
	}
	return p, nil
}

// mongoSummary is a driver error without its text, which may quote the URI or a value.
func mongoSummary(err error) string {
	var se mongo.ServerError
	var ce mongo.CommandError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("the server refused (MongoDB %d)", ce.Code)
	case errors.As(err, &se):
		return "the server refused"
	case mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return "the server did not answer in time"
	default:
		return "the server could not be reached"
	}
}

func sampleFields(ctx context.Context, coll *mongo.Collection) (map[string]*fieldKinds, error) {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetLimit(MongoSampleSize))
	if err != nil {
		return nil, err
	}
	defer func() { _ = cur.Close(context.Background()) }()
	fields := map[string]*fieldKinds{}
	for cur.Next(ctx) {
		var doc bson.D
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		walkFields(doc, "", fields)
	}
	return fields, cur.Err()
}

// walkFields records the kind of every scalar under its dotted path (array positions left out).
func walkFields(v any, path string, fields map[string]*fieldKinds) {
	note := func(set func(*fieldKinds)) {
		if fields[path] == nil {
			fields[path] = &fieldKinds{}
		}
		set(fields[path])
	}
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			p := e.Key
			if path != "" {
				p = path + "." + e.Key
			}
			walkFields(e.Value, p, fields)
		}
	case bson.A:
		for _, el := range x {
			walkFields(el, path, fields)
		}
	case string:
		note(func(k *fieldKinds) { k.text = true })
	case int32, int64:
		note(func(k *fieldKinds) { k.integer = true })
	case bson.ObjectID:
		note(func(k *fieldKinds) { k.objectID = true })
	}
}

func proposeMongo(order []string, samples map[string]map[string]*fieldKinds, opts Options) *MongoProposal {
	known := opts.Known
	if len(known) == 0 {
		known = []string{IdentifierEmail}
	}
	p := &MongoProposal{}
	for _, name := range order {
		if !mongoCollectionPattern.MatchString(name) {
			p.Notes = append(p.Notes, fmt.Sprintf("collection %q: its name is not <database>.<collection> of letters, digits, _, - and .: not mapped", name))
			continue
		}
		var primary, secondary []privacyv1alpha1.FieldMatch
		paths := sortedKeys(samples[name])
		for _, path := range paths {
			k := samples[name][path]
			typ := ""
			if k.integer {
				typ = "int"
			} else if k.objectID {
				typ = "uuid" // an ObjectID is an opaque id, as a uuid is to the classifier
			}
			id, ok := classifyIdentifier(sqlstore.Column{Name: path, Text: k.text, Type: typ})
			if !ok {
				continue
			}
			if !mongoFieldPattern.MatchString(path) {
				p.Notes = append(p.Notes, fmt.Sprintf("%s: field %q looks like a %s but is not a dotted path of identifiers: not mapped", name, path, id.identifier))
				continue
			}
			if !slices.Contains(known, id.identifier) {
				p.Notes = append(p.Notes, fmt.Sprintf("%s: field %s looks like a %s identifier; the proposal does not match it because requests are assumed to carry no %s (add it with --identifiers)", name, path, id.identifier, id.identifier))
				continue
			}
			m := privacyv1alpha1.FieldMatch{Field: path, Identifier: id.identifier}
			if id.secondary {
				secondary = append(secondary, m)
			} else {
				primary = append(primary, m)
			}
		}
		if len(primary) > 0 {
			l := &MongoListing{Mapping: privacyv1alpha1.CollectionMapping{Name: name, Match: capMatches(primary), Action: privacyv1alpha1.ActionDelete}}
			l.Why = append(l.Why, "the subject's own documents: fields "+fieldList(primary)+" are named like identifiers in the sampled documents; a document holding the subject's value there is deleted")
			p.Listings = append(p.Listings, l)
		}
		for _, m := range secondary {
			l := &MongoListing{Mapping: privacyv1alpha1.CollectionMapping{Name: name, Match: []privacyv1alpha1.FieldMatch{m}, Action: privacyv1alpha1.ActionMask,
				Mask: []privacyv1alpha1.FieldMask{{Field: m.Field, Strategy: privacyv1alpha1.MaskRedact}}}}
			l.Why = append(l.Why, "field "+m.Field+" names someone else's contact on the document: a match there masks the field and leaves the document")
			p.Listings = append(p.Listings, l)
		}
		if len(primary) == 0 && len(secondary) == 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("collection %s: no field named like a known identifier in a sample of %d documents: not mapped", name, MongoSampleSize))
		}
	}
	return p
}

func capMatches(m []privacyv1alpha1.FieldMatch) []privacyv1alpha1.FieldMatch {
	if len(m) > maxMatches {
		return m[:maxMatches]
	}
	return m
}

func fieldList(m []privacyv1alpha1.FieldMatch) string {
	names := make([]string, len(m))
	for i, f := range m {
		names[i] = f.Field
	}
	return strings.Join(names, ", ")
}

// RenderMongo writes the proposal as a commented DataStore manifest of type mongodb.
func RenderMongo(w io.Writer, p *MongoProposal, h Header) error {
	bw := bufio.NewWriter(w)
	out := &writer{w: bw}
	out.comment("", fmt.Sprintf("DataStore proposed by `kubectl dsr discover` from the collections of a MongoDB deployment and the field names of a sample of at most %d documents of each (no value is printed). MongoDB has no schema: a field none of the sampled documents holds is not seen. Review it before applying.", MongoSampleSize))
	out.comment("", "Matched identifiers of the requests' identifiers Secret: "+strings.Join(h.Known, ", ")+".")
	out.line("apiVersion: " + privacyv1alpha1.GroupVersion.String())
	out.line("kind: DataStore")
	out.line("metadata:")
	out.line("  name: " + scalar(h.Name))
	if h.Namespace != "" {
		out.line("  namespace: " + scalar(h.Namespace))
	}
	out.line("spec:")
	out.line("  type: " + string(privacyv1alpha1.StoreTypeMongoDB))
	out.line("  connection:")
	out.line(fmt.Sprintf("    secretRef: {name: %s, key: %s}", scalar(h.SecretName), scalar(h.SecretKey)))
	out.line("  collections:")
	for _, l := range p.Listings {
		m := l.Mapping
		out.line("")
		out.comment("  ", fmt.Sprintf("%s: %s.", m.Name, m.Action))
		for _, why := range l.Why {
			out.comment("  ", why)
		}
		out.line("  - name: " + scalar(m.Name))
		out.line("    match:")
		for _, f := range m.Match {
			out.line(fmt.Sprintf("    - {field: %s, identifier: %s}", scalar(f.Field), scalar(f.Identifier)))
		}
		out.line("    action: " + string(m.Action))
		if len(m.Mask) > 0 {
			out.line("    mask:")
			for _, f := range m.Mask {
				out.line(fmt.Sprintf("    - {field: %s, strategy: %s}", scalar(f.Field), f.Strategy))
			}
		}
	}
	if len(p.Notes) > 0 {
		out.line("")
		out.comment("", "Not mapped, or to review:")
		for _, n := range p.Notes {
			out.comment("", "- "+n)
		}
	}
	if out.err != nil {
		return out.err
	}
	return bw.Flush()
}
