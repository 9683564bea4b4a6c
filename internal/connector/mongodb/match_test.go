package mongodb_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
)

// TestArrayFieldMatchesAnyElement: an array of addresses, and an array of subdocuments on the
// path, match when any element does.
func TestArrayFieldMatchesAnyElement(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("people",
		bson.D{{Key: "_id", Value: 1}, {Key: "emails", Value: bson.A{"old@example.com", "alice@example.com"}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "contacts", Value: bson.A{bson.D{{Key: "email", Value: "x@example.com"}}, bson.D{{Key: "email", Value: "alice@example.com"}}}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "emails", Value: bson.A{"bob@example.com"}}, {Key: "contacts", Value: bson.A{bson.D{{Key: "email", Value: "carol@example.com"}}}}},
	)
	c := e.client(e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("people"), Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.FieldMatch{{Field: "emails", Identifier: "email"}, {Field: "contacts.email", Identifier: "email"}}}), mongodb.Options{})
	res := mustErase(t, c, req(map[string]string{"email": "alice@example.com"}))
	if res.Erased != 2 || e.count("people", bson.D{}) != 1 || e.count("people", bson.D{{Key: "_id", Value: 3}}) != 1 {
		t.Fatalf("erase: %+v, %d left", res, e.count("people", bson.D{}))
	}
}

// TestNormalisedEmailAndPhone: every spelling of the subject's address and number is found, and
// values that only resemble them (a longer address, a regex-like spelling, another number with
// the same digits inside) are not.
func TestNormalisedEmailAndPhone(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("contacts",
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "  Alice@EXAMPLE.com "}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "alice@example.com"}},
		bson.D{{Key: "_id", Value: 3}, {Key: "phone", Value: "+1 (415) 555-0134"}},
		bson.D{{Key: "_id", Value: 4}, {Key: "phone", Value: "415.555.0134"}},
		bson.D{{Key: "_id", Value: 10}, {Key: "email", Value: "xalice@example.com"}},
		bson.D{{Key: "_id", Value: 11}, {Key: "email", Value: "alice@example.com.evil"}},
		bson.D{{Key: "_id", Value: 12}, {Key: "email", Value: "alicE@example.co"}},
		bson.D{{Key: "_id", Value: 13}, {Key: "phone", Value: "+44 415 555 0134"}},
		bson.D{{Key: "_id", Value: 14}, {Key: "phone", Value: "1415555013499"}},
	)
	c := e.client(e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("contacts"), Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.FieldMatch{{Field: "email", Identifier: "email"}, {Field: "phone", Identifier: "phone"}}}), mongodb.Options{})
	r := req(map[string]string{"email": "ALICE@example.com", "phone": "(415) 555-0134"})
	res := mustErase(t, c, r)
	if res.Erased != 4 {
		t.Fatalf("erase: %+v, want 4 erased", res)
	}
	for _, id := range []int{10, 11, 12, 13, 14} {
		if e.count("contacts", bson.D{{Key: "_id", Value: id}}) != 1 {
			t.Fatalf("bystander %d was erased", id)
		}
	}
	if v := mustVerify(t, c, r); v.Remaining != 0 {
		t.Fatalf("verify: %+v", v)
	}
}

// TestHostileValuesAreOnlyValues: values that look like operators, paths, regexes or hold NUL
// match only documents holding exactly them; nothing else is touched and nothing fails.
func TestHostileValuesAreOnlyValues(t *testing.T) {
	hostile := []string{`{"$ne": 1}`, "$where", "$gt", "a.b", "nul\x00byte", ".*", "^", `\`, "$regex"}
	for _, value := range hostile {
		t.Run(value, func(t *testing.T) {
			e := newEnv(t, nil)
			e.insert("users",
				bson.D{{Key: "_id", Value: "subject"}, {Key: "uid", Value: value}, {Key: "email", Value: value + "@example.com"}},
				bson.D{{Key: "_id", Value: "b1"}, {Key: "uid", Value: "bystander"}, {Key: "email", Value: "bob@example.com"}},
				bson.D{{Key: "_id", Value: "b2"}, {Key: "uid", Value: value + "x"}, {Key: "email", Value: "x" + value + "@example.com"}},
				bson.D{{Key: "_id", Value: "b3"}, {Key: "uid", Value: bson.D{{Key: "op", Value: value}}}},
				bson.D{{Key: "_id", Value: "b4"}, {Key: "other", Value: value}},
			)
			c := e.client(e.spec(
				privacyv1alpha1.CollectionMapping{Name: e.name("users"), Action: privacyv1alpha1.ActionDelete, Match: match("uid", "userId")},
			), mongodb.Options{})
			res := mustErase(t, c, req(map[string]string{"userId": value}))
			if res.Erased != 1 || e.count("users", bson.D{{Key: "_id", Value: "subject"}}) != 0 || e.count("users", bson.D{}) != 4 {
				t.Fatalf("erase: %+v, %d documents left, want the subject gone and 4 bystanders", res, e.count("users", bson.D{}))
			}
			// The same value as an email address, through the regex prefilter.
			e.insert("users", bson.D{{Key: "_id", Value: "subject2"}, {Key: "email", Value: value + "@example.com"}})
			c2 := e.client(e.spec(
				privacyv1alpha1.CollectionMapping{Name: e.name("users"), Action: privacyv1alpha1.ActionDelete, Match: match("email", "email")},
			), mongodb.Options{})
			r := req(map[string]string{"email": value + "@example.com"})
			if _, err := c2.Erase(context.Background(), r); err != nil {
				noValueIn(t, err, value+"@example.com")
				t.Fatal(err)
			}
			if e.count("users", bson.D{{Key: "_id", Value: "subject2"}}) != 0 || e.count("users", bson.D{{Key: "_id", Value: "b2"}}) != 1 || e.count("users", bson.D{{Key: "_id", Value: "b1"}}) != 1 {
				t.Fatal("email match of a hostile value erased the wrong documents")
			}
		})
	}
}

// TestMaskThroughArrays: a masked path through an array of subdocuments masks every element's
// field and keeps its siblings; nullify of an array field nulls it; a second erasure changes
// nothing.
func TestMaskThroughArrays(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("accounts",
		bson.D{{Key: "_id", Value: 1}, {Key: "owner", Value: "alice@example.com"},
			{Key: "contacts", Value: bson.A{bson.D{{Key: "email", Value: "a@x.com"}, {Key: "kind", Value: "work"}}, bson.D{{Key: "email", Value: "b@x.com"}, {Key: "kind", Value: "home"}}}},
			{Key: "phones", Value: bson.A{"555-0100", "555-0101"}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "owner", Value: "bob@example.com"},
			{Key: "contacts", Value: bson.A{bson.D{{Key: "email", Value: "c@x.com"}}}}, {Key: "phones", Value: bson.A{"555-0199"}}},
	)
	c := e.client(e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("accounts"), Match: match("owner", "email"), Action: privacyv1alpha1.ActionMask,
		Mask: []privacyv1alpha1.FieldMask{{Field: "contacts.email", Strategy: privacyv1alpha1.MaskRedact}, {Field: "phones", Strategy: privacyv1alpha1.MaskNullify}}}), mongodb.Options{})
	r := req(map[string]string{"email": "alice@example.com"})
	if res := mustErase(t, c, r); res.Masked != 1 {
		t.Fatalf("erase: %+v", res)
	}
	got := e.get("accounts", 1)
	contacts := got["contacts"].(bson.A)
	for i, kind := range []string{"work", "home"} {
		el := contacts[i].(bson.D)
		if el[0].Value != privacyv1alpha1.RedactedMarker || el[1].Value != kind {
			t.Fatalf("contact %d: %v", i, el)
		}
	}
	if got["phones"] != nil {
		t.Fatalf("phones: %v", got["phones"])
	}
	if b := e.get("accounts", 2); b["contacts"].(bson.A)[0].(bson.D)[0].Value != "c@x.com" || len(b["phones"].(bson.A)) != 1 {
		t.Fatalf("bystander changed: %v", b)
	}
	if res := mustErase(t, c, r); res.Masked != 0 {
		t.Fatalf("second erase: %+v", res)
	}
	if v := mustVerify(t, c, r); v.Remaining != 0 {
		t.Fatalf("verify: %+v", v)
	}
}
