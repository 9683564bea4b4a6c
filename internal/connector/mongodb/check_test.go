package mongodb_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
)

// TestCheck: a missing collection is a mapping problem; a match field without an index is a
// warning that goes away with the index.
func TestCheck(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("users", bson.D{{Key: "email", Value: "x@example.com"}})
	c := e.client(e.spec(
		privacyv1alpha1.CollectionMapping{Name: e.name("users"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete},
	), mongodb.Options{})
	res, err := c.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "field email of collection "+e.name("users")+" has no index") {
		t.Fatalf("warnings: %q", res.Warnings)
	}
	if _, err := e.coll("users").Indexes().CreateOne(context.Background(), mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	if res, err = c.Check(context.Background()); err != nil || len(res.Warnings) != 0 {
		t.Fatalf("with an index: %v, %q", err, res.Warnings)
	}

	missing := e.client(e.spec(
		privacyv1alpha1.CollectionMapping{Name: e.name("nothere"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete},
	), mongodb.Options{})
	_, err = missing.Check(context.Background())
	if connector.KindOf(err) != connector.KindMapping || !strings.Contains(connector.Summary(err), "collection "+e.name("nothere")+" does not exist") {
		t.Fatalf("missing collection: %v", err)
	}
}

// TestValidateSpec: what the CRD cannot check.
func TestValidateSpec(t *testing.T) {
	p := mongodb.NewProvider(mongodb.Options{})
	base := func() *privacyv1alpha1.DataStoreSpec {
		return &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeMongoDB, Collections: []privacyv1alpha1.CollectionMapping{{
			Name: "shop.users", Match: match("email", "email"), Action: privacyv1alpha1.ActionMask,
			Mask: []privacyv1alpha1.FieldMask{{Field: "name", Strategy: privacyv1alpha1.MaskRedact}}}}}
	}
	if err := p.ValidateSpec(base()); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*privacyv1alpha1.DataStoreSpec){
		"_id cannot be masked": func(s *privacyv1alpha1.DataStoreSpec) { s.Collections[0].Mask[0].Field = "_id" },
		"is not <database>":    func(s *privacyv1alpha1.DataStoreSpec) { s.Collections[0].Name = "users" },
		"system collection":    func(s *privacyv1alpha1.DataStoreSpec) { s.Collections[0].Name = "shop.system.users" },
		"not a dotted path":    func(s *privacyv1alpha1.DataStoreSpec) { s.Collections[0].Match[0].Field = "$where" },
		"is inside masked field": func(s *privacyv1alpha1.DataStoreSpec) {
			s.Collections[0].Mask = append(s.Collections[0].Mask, privacyv1alpha1.FieldMask{Field: "name.first", Strategy: privacyv1alpha1.MaskRedact})
		},
		"is masked twice": func(s *privacyv1alpha1.DataStoreSpec) {
			s.Collections[0].Mask = append(s.Collections[0].Mask, s.Collections[0].Mask[0])
		},
		"takes collections": func(s *privacyv1alpha1.DataStoreSpec) { s.Keys = []privacyv1alpha1.KeyMapping{{Pattern: "u:{id}"}} },
		"neither mapped nor database": func(s *privacyv1alpha1.DataStoreSpec) {
			s.Verification = &privacyv1alpha1.DataStoreVerification{DeepScope: "everything"}
		},
	}
	for want, mutate := range cases {
		s := base()
		mutate(s)
		err := p.ValidateSpec(s)
		if connector.KindOf(err) != connector.KindMapping || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

// TestInvalidURIKeepsThePasswordOut: an unusable Secret is an invalid configuration whose text
// never quotes the Secret.
func TestInvalidURIKeepsThePasswordOut(t *testing.T) {
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeMongoDB, Collections: []privacyv1alpha1.CollectionMapping{{
		Name: "shop.users", Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete}}}
	for _, secret := range []string{"mongodb://u:s3cretpw@host:notaport/db", "postgres://u:s3cretpw@host/db", "mongodb://u:s3cretpw@/"} {
		_, err := mongodb.NewProvider(mongodb.Options{}).NewClient(context.Background(), connector.Config{Spec: spec, Secret: []byte(secret)})
		if connector.KindOf(err) != connector.KindInvalid {
			t.Fatalf("%T %v: want %s", err, err, connector.KindInvalid)
		}
		noValueIn(t, err, "s3cretpw")
	}
}

// TestUnreachableServerIsUnavailable: nothing listens on the port.
func TestUnreachableServerIsUnavailable(t *testing.T) {
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeMongoDB, Collections: []privacyv1alpha1.CollectionMapping{{
		Name: "shop.users", Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete}}}
	spec.Connection.Timeout = nil
	ctx, cancel := context.WithTimeout(context.Background(), 3e9)
	defer cancel()
	_, err := mongodb.NewProvider(mongodb.Options{}).NewClient(ctx, connector.Config{Spec: spec, Secret: []byte("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500")})
	if connector.KindOf(err) != connector.KindUnavailable {
		t.Fatalf("want %s, got %v", connector.KindUnavailable, err)
	}
}
