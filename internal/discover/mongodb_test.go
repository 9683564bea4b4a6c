package discover_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
	"github.com/dsr-operator/dsr-operator/internal/discover"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// A sample of each collection's documents shows which fields are named like identifiers: the
// proposal deletes the documents that hold the subject's own email, masks someone else's
// contact, notes what it leaves out, prints no value it read, and is a spec the connector takes.
func TestDiscoverMongo(t *testing.T) {
	ctx := context.Background()
	dbName, uri := teststore.SharedMongo(t).CreateDatabase("")
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db := client.Database(dbName)
	inserts := map[string][]bson.D{
		"users":    {{{Key: "email", Value: "secret-alice@example.com"}, {Key: "profile", Value: bson.D{{Key: "phone", Value: "555-0100"}}}}},
		"tickets":  {{{Key: "contact", Value: bson.D{{Key: "email", Value: "x@example.com"}}}, {Key: "cc_email", Value: "y@example.com"}}},
		"products": {{{Key: "sku", Value: "A-1"}, {Key: "price", Value: 3}}},
	}
	for coll, docs := range inserts {
		for _, d := range docs {
			if _, err := db.Collection(coll).InsertOne(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if typ, err := discover.DetectType(uri); err != nil || typ != privacyv1alpha1.StoreTypeMongoDB {
		t.Fatalf("DetectType = %q, %v", typ, err)
	}
	p, err := discover.DiscoverMongo(ctx, uri, discover.Options{Known: []string{discover.IdentifierEmail}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := discover.RenderMongo(&buf, p, discover.Header{Name: "docs", SecretName: "docs-conn", SecretKey: "uri", Known: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "secret-alice") || strings.Contains(out, "555-0100") {
		t.Fatalf("the proposal prints a value:\n%s", out)
	}
	var ds privacyv1alpha1.DataStore
	if err := yaml.UnmarshalStrict(buf.Bytes(), &ds); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := mongodb.NewProvider(mongodb.Options{}).ValidateSpec(&ds.Spec); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, c := range ds.Spec.Collections {
		got[c.Name+" "+string(c.Action)] = c.Match[0].Field
	}
	want := map[string]string{
		dbName + ".users delete":   "email",
		dbName + ".tickets delete": "contact.email",
		dbName + ".tickets mask":   "cc_email",
	}
	if len(got) != len(want) {
		t.Fatalf("collections %v, want %v\n%s", got, want, out)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("collections %v, want %v\n%s", got, want, out)
		}
	}
	for _, note := range []string{"collection " + dbName + ".products: no field named like a known identifier", "field profile.phone looks like a phone identifier"} {
		if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(out, "#", "")), " "), note) {
			t.Errorf("the proposal does not note %q:\n%s", note, out)
		}
	}

	// Nothing to match: an error that says so.
	_, err = discover.DiscoverMongo(ctx, uri, discover.Options{Known: []string{discover.IdentifierUserID}})
	if !errors.Is(err, discover.ErrNothingToMatch) {
		t.Fatalf("want ErrNothingToMatch, got %v", err)
	}
}
