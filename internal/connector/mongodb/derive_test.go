package mongodb_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// shopSpec: customers (found by email) provide customerId from _id and addressId; orders match
// customerId; addresses match addressId.
func shopSpec(e *env) *privacyv1alpha1.DataStoreSpec {
	return e.spec(
		privacyv1alpha1.CollectionMapping{Name: e.name("customers"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete,
			Provides: []privacyv1alpha1.FieldProvide{{Identifier: "customerId", Field: "_id"}, {Identifier: "addressId", Field: "addressId"}}},
		privacyv1alpha1.CollectionMapping{Name: e.name("orders"), Match: match("customerId", "customerId"), Action: privacyv1alpha1.ActionDelete},
		privacyv1alpha1.CollectionMapping{Name: e.name("addresses"), Match: match("_id", "addressId"), Action: privacyv1alpha1.ActionDelete},
	)
}

type shop struct {
	alice, bob bson.ObjectID
}

func seedShop(e *env) shop {
	s := shop{alice: bson.NewObjectID(), bob: bson.NewObjectID()}
	e.insert("customers",
		bson.D{{Key: "_id", Value: s.alice}, {Key: "email", Value: "alice@example.com"}, {Key: "addressId", Value: "home-1"}},
		bson.D{{Key: "_id", Value: s.bob}, {Key: "email", Value: "bob@example.com"}, {Key: "addressId", Value: "shared-9"}},
		// Alice's second account lives where Bob does: that address is shared.
		bson.D{{Key: "_id", Value: 77}, {Key: "email", Value: "Alice@Example.com"}, {Key: "addressId", Value: "shared-9"}},
	)
	e.insert("orders",
		bson.D{{Key: "_id", Value: "o1"}, {Key: "customerId", Value: s.alice}, {Key: "item", Value: "book"}},
		bson.D{{Key: "_id", Value: "o2"}, {Key: "customerId", Value: s.alice}, {Key: "item", Value: "lamp"}},
		bson.D{{Key: "_id", Value: "o3"}, {Key: "customerId", Value: int64(77)}, {Key: "item", Value: "pen"}},
		bson.D{{Key: "_id", Value: "o4"}, {Key: "customerId", Value: s.bob}, {Key: "item", Value: "desk"}},
	)
	e.insert("addresses",
		bson.D{{Key: "_id", Value: "home-1"}, {Key: "street", Value: "1 Main St"}},
		bson.D{{Key: "_id", Value: "shared-9"}, {Key: "street", Value: "9 Side St"}},
	)
	return s
}

// derive runs Derive and returns the request erase and verify need.
func derive(t *testing.T, c connector.Client, r connector.Request) connector.Request {
	t.Helper()
	d, err := c.(connector.Deriver).Derive(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	r.Values, r.Shared = d.Values, d.Shared
	return r
}

// TestDerivedIdentifiersAndSharedValues: customer._id (an ObjectID, and an integer) provides
// customerId to orders; an address another customer also lives at is shared and left alone.
func TestDerivedIdentifiersAndSharedValues(t *testing.T) {
	e := newEnv(t, nil)
	s := seedShop(e)
	c := e.client(shopSpec(e), mongodb.Options{})
	r := derive(t, c, req(map[string]string{"email": "alice@example.com"}))
	if !r.Values.Has("customerId", s.alice.Hex()) || !r.Values.Has("customerId", "77") || !r.Values.Has("addressId", "home-1") {
		t.Fatalf("derived %d values, want both customer ids and home-1", r.Values.Count())
	}
	if r.Values.Has("addressId", "shared-9") || !r.Shared.Has("addressId", "shared-9") {
		t.Fatal("shared-9 is Bob's address too: it must be shared, not derived")
	}
	res := mustErase(t, c, r)
	if res.Erased != 2+3+1 || res.Shared != 1 {
		t.Fatalf("erase: %+v, want 6 erased (2 customers, 3 orders, 1 address) and 1 shared", res)
	}
	if e.count("orders", bson.D{}) != 1 || e.count("orders", bson.D{{Key: "_id", Value: "o4"}}) != 1 {
		t.Fatal("only Bob's order may remain")
	}
	if e.count("addresses", bson.D{{Key: "_id", Value: "shared-9"}}) != 1 || e.count("customers", bson.D{{Key: "_id", Value: s.bob}}) != 1 {
		t.Fatal("Bob's customer and the shared address must stay")
	}
	v := mustVerify(t, c, r)
	if v.Remaining != 0 || v.Shared != 1 {
		t.Fatalf("verify: %+v", v)
	}
}

// TestDeepVerifyFindsCopiesOutsideMatchFields: a copy of the address in a free-text field of a
// mapped collection is a deep finding, not a plain remainder.
func TestDeepVerifyFindsCopiesOutsideMatchFields(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("tickets",
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "bob@example.com"}, {Key: "notes", Value: bson.A{"call back", "cc ALICE@example.com please"}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "carol@example.com"}, {Key: "meta", Value: bson.D{{Key: "from", Value: "alice@example.com"}}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "dave@example.com"}, {Key: "notes", Value: "nothing here"}},
	)
	c := e.client(e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("tickets"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete}), mongodb.Options{})
	r := req(map[string]string{"email": "alice@example.com"})
	if v := mustVerify(t, c, r); v.Remaining != 0 {
		t.Fatalf("plain verify: %+v", v)
	}
	r.Deep = true
	v := mustVerify(t, c, r)
	want := map[string]int64{e.name("tickets") + " (deep: notes)": 1, e.name("tickets") + " (deep: meta.from)": 1}
	if v.Remaining != 2 || len(v.RemainingLocations) != 2 {
		t.Fatalf("deep verify: %+v", v)
	}
	for _, loc := range v.RemainingLocations {
		if want[loc.Location] != loc.Records {
			t.Fatalf("deep verify: unexpected %+v", loc)
		}
	}
}

// TestServerStoppedMidErase: the server goes away after the first document of an erasure; Erase
// reports an unavailable store without any identifier in its text, and after a restart a new
// derive and erase finish the job (orders go before the customer that leads to them).
func TestServerStoppedMidErase(t *testing.T) {
	ctx := context.Background()
	server, err := teststore.StartMongo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	e := newEnv(t, server)
	s := seedShop(e)
	writes := 0
	c := e.client(shopSpec(e), mongodb.Options{BatchSize: 1, AfterWrite: func(string) {
		writes++
		if writes == 1 {
			_ = server.Stop()
		}
	}})
	r := derive(t, c, req(map[string]string{"email": "alice@example.com"}))
	_, err = c.Erase(ctx, r)
	if err == nil {
		t.Fatal("erase succeeded with the server stopped")
	}
	if connector.KindOf(err) != connector.KindUnavailable {
		t.Fatalf("kind %s, want %s: %v", connector.KindOf(err), connector.KindUnavailable, err)
	}
	noValueIn(t, err, "alice@example.com", s.alice.Hex(), "home-1")
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if e.count("customers", bson.D{{Key: "_id", Value: s.alice}}) != 1 || e.count("orders", bson.D{}) != 3 {
		t.Fatalf("after one write: want the customer kept and one order gone, have %d orders", e.count("orders", bson.D{}))
	}
	r = derive(t, c, req(map[string]string{"email": "alice@example.com"}))
	if _, err := c.Erase(ctx, r); err != nil {
		t.Fatal(err)
	}
	if v := mustVerify(t, c, r); v.Remaining != 0 {
		t.Fatalf("verify after the re-run: %+v", v)
	}
	if e.count("orders", bson.D{}) != 1 || e.count("customers", bson.D{}) != 1 {
		t.Fatal("the re-run must leave only Bob's customer and order")
	}
}

// TestDeepVerifyOfTheWholeDatabase: with deepScope database, copies in collections the mapping
// does not name are unmapped findings by collection and field path, never remaining; without it
// they are not searched.
func TestDeepVerifyOfTheWholeDatabase(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("users", bson.D{{Key: "email", Value: "bob@example.com"}})
	e.insert("audit", bson.D{{Key: "payload", Value: bson.D{{Key: "to", Value: "mail to ALICE@example.com"}}}}, bson.D{{Key: "payload", Value: "nothing"}})
	e.insert("logs", bson.D{{Key: "line", Value: "alice@example.com logged in"}}, bson.D{{Key: "line", Value: "alice@example.com logged out"}})
	spec := e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("users"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete})
	r := req(map[string]string{"email": "alice@example.com"})
	r.Deep = true
	if v := mustVerify(t, e.client(spec, mongodb.Options{}), r); v.Unmapped != 0 || v.Remaining != 0 {
		t.Fatalf("deepScope mapped: %+v", v)
	}
	spec.Verification = &privacyv1alpha1.DataStoreVerification{DeepScope: privacyv1alpha1.DeepScopeDatabase}
	v := mustVerify(t, e.client(spec, mongodb.Options{}), r)
	want := map[string]int64{e.name("audit") + ".payload.to": 1, e.name("logs") + ".line": 2}
	if v.Remaining != 0 || v.Unmapped != 3 || len(v.UnmappedLocations) != 2 {
		t.Fatalf("deepScope database: %+v", v)
	}
	for _, loc := range v.UnmappedLocations {
		if want[loc.Location] != loc.Records {
			t.Fatalf("deepScope database: unexpected %+v", loc)
		}
	}
}

// A match field is deep-searched for its own identifier's values only: the bystander whose
// customerId is "11", the subject's order id, is not the subject's; a note holding "11" is.
func TestDeepVerifySearchesMatchFieldsForTheirOwnValues(t *testing.T) {
	e := newEnv(t, nil)
	e.insert("events",
		bson.D{{Key: "_id", Value: 1}, {Key: "who", Value: bson.D{{Key: "customerId", Value: "11"}}}, {Key: "note", Value: "someone else's"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "who", Value: bson.D{{Key: "customerId", Value: "3"}}}, {Key: "note", Value: "11"}},
	)
	c := e.client(e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("events"), Match: match("who.customerId", "customerId"), Action: privacyv1alpha1.ActionDelete}), mongodb.Options{})
	r := req(map[string]string{"customerId": "1"})
	r.Values = connector.Values{"orderId": {"11"}}
	r.Deep = true
	v := mustVerify(t, c, r)
	if v.Remaining != 1 || len(v.RemainingLocations) != 1 || v.RemainingLocations[0].Location != e.name("events")+" (deep: note)" {
		t.Fatalf("deep verify: %+v", v)
	}
}
