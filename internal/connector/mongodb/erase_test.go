package mongodb_test

import (
	"context"
	"regexp"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
)

// TestEraseMaskRetainVerifyCollect runs the whole cycle on one subject with bystanders in every
// collection: dry run, collect, erase, verify, a second erase that finds nothing.
func TestEraseMaskRetainVerifyCollect(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("users",
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "alice@example.com"}, {Key: "name", Value: "Alice"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "bob@example.com"}, {Key: "name", Value: "Bob"}},
	)
	e.insert("reviews",
		bson.D{{Key: "_id", Value: "r1"}, {Key: "author", Value: bson.D{{Key: "email", Value: "alice@example.com"}, {Key: "name", Value: "Alice"}, {Key: "since", Value: 2020}}}, {Key: "text", Value: "great"}, {Key: "phone", Value: "555-0100"}},
		bson.D{{Key: "_id", Value: "r2"}, {Key: "author", Value: bson.D{{Key: "email", Value: "bob@example.com"}, {Key: "name", Value: "Bob"}}}, {Key: "text", Value: "meh"}, {Key: "phone", Value: "555-0101"}},
	)
	e.insert("invoices",
		bson.D{{Key: "_id", Value: "i1"}, {Key: "email", Value: "alice@example.com"}, {Key: "total", Value: 12}},
		bson.D{{Key: "_id", Value: "i2"}, {Key: "email", Value: "bob@example.com"}, {Key: "total", Value: 7}},
	)
	spec := e.spec(
		privacyv1alpha1.CollectionMapping{Name: e.name("users"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete},
		privacyv1alpha1.CollectionMapping{Name: e.name("reviews"), Match: match("author.email", "email"), Action: privacyv1alpha1.ActionMask,
			Mask: []privacyv1alpha1.FieldMask{
				{Field: "author.email", Strategy: privacyv1alpha1.MaskHash},
				{Field: "author.name", Strategy: privacyv1alpha1.MaskRedact},
				{Field: "phone", Strategy: privacyv1alpha1.MaskNullify},
			}},
		privacyv1alpha1.CollectionMapping{Name: e.name("invoices"), Match: match("email", "email"), Action: privacyv1alpha1.ActionRetain, RetainReason: "tax law"},
	)
	c := e.client(spec, mongodb.Options{})
	r := req(map[string]string{"email": "alice@example.com"})

	if _, err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	dry := r
	dry.DryRun = true
	res := mustErase(t, c, dry)
	if res.Erased != 1 || res.Masked != 1 || res.Retained != 1 {
		t.Fatalf("dry run: %+v, want 1 erased, 1 masked, 1 retained", res)
	}
	if e.count("users", bson.D{}) != 2 {
		t.Fatal("dry run changed the store")
	}

	col, err := c.Collect(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(col.Records) != 3 {
		t.Fatalf("collect: %d records, want 3: %+v", len(col.Records), col.Records)
	}
	for _, rec := range col.Records {
		if rec.Location == e.name("reviews") && rec.Data["text"] != "great" {
			t.Fatalf("collect of reviews: %+v", rec)
		}
	}

	res = mustErase(t, c, r)
	if res.Erased != 1 || res.Masked != 1 || res.Retained != 1 || res.RetainedLocations[0].Reason != "tax law" {
		t.Fatalf("erase: %+v", res)
	}
	if e.count("users", bson.D{{Key: "_id", Value: 1}}) != 0 || e.count("users", bson.D{{Key: "_id", Value: 2}}) != 1 {
		t.Fatal("users: the subject must be gone and the bystander kept")
	}
	review := e.get("reviews", "r1")
	author := review["author"].(bson.D)
	hashed := author[0].Value.(string)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hashed) || author[1].Value != privacyv1alpha1.RedactedMarker || len(author) != 3 || author[2].Value != int32(2020) || review["phone"] != nil || review["text"] != "great" {
		t.Fatalf("masked review: %+v", review)
	}
	if b := e.get("reviews", "r2"); b["phone"] != "555-0101" || b["author"].(bson.D)[0].Value != "bob@example.com" {
		t.Fatalf("bystander's review changed: %+v", b)
	}
	if e.count("invoices", bson.D{}) != 2 {
		t.Fatal("retained invoices must stay")
	}

	v := mustVerify(t, c, r)
	if v.Remaining != 0 || v.Retained != 1 {
		t.Fatalf("verify: %+v", v)
	}
	again := mustErase(t, c, r)
	if again.Erased != 0 || again.Masked != 0 || again.Retained != 1 {
		t.Fatalf("second erase must find nothing to do: %+v", again)
	}
	if got := e.get("reviews", "r1")["author"].(bson.D)[0].Value; got != hashed {
		t.Fatal("a second erase hashed the hash again")
	}
}

// TestVerifyCountsWhatRemains: verify is not trivially zero.
func TestVerifyCountsWhatRemains(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("users", bson.D{{Key: "email", Value: "alice@example.com"}}, bson.D{{Key: "email", Value: "alice@example.com"}})
	c := e.client(e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("users"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete}), mongodb.Options{})
	v := mustVerify(t, c, req(map[string]string{"email": "alice@example.com"}))
	if v.Remaining != 2 || len(v.RemainingLocations) != 1 || v.RemainingLocations[0].Location != e.name("users") {
		t.Fatalf("verify before erase: %+v", v)
	}
}

// TestRetainWinsOverDelete: a document two mappings of one collection match is retained.
func TestRetainWinsOverDelete(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("orders",
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "alice@example.com"}, {Key: "disputed", Value: "alice@example.com"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "alice@example.com"}},
	)
	c := e.client(e.spec(
		privacyv1alpha1.CollectionMapping{Name: e.name("orders"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete},
		privacyv1alpha1.CollectionMapping{Name: e.name("orders"), Match: match("disputed", "email"), Action: privacyv1alpha1.ActionRetain, RetainReason: "dispute"},
	), mongodb.Options{})
	res := mustErase(t, c, req(map[string]string{"email": "alice@example.com"}))
	if res.Erased != 1 || res.Retained != 1 {
		t.Fatalf("erase: %+v", res)
	}
	if e.count("orders", bson.D{{Key: "_id", Value: 1}}) != 1 || e.count("orders", bson.D{{Key: "_id", Value: 2}}) != 0 {
		t.Fatal("retain must win over delete")
	}
}
