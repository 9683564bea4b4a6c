package controllers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// The PostgreSQL shop derives the customer id (an integer) and the order ids from the email; a
// MongoDB store of profiles and events keyed by them is erased through them end to end: the
// subject's documents deleted or masked, the bystander's and the look-alikes (a profile keyed by
// a number that is one of the subject's order ids, not a customer id) intact, and status and the
// receipt count what was done.
func TestLinkedPostgresToMongoDB(t *testing.T) {
	db, dsn := linkedShop(t)
	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: linkedSpec("shop-conn")})

	ctx := context.Background()
	dbName, uri := teststore.SharedMongo(t).CreateDatabase("")
	raw, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Disconnect(context.Background()) })
	profiles, events := raw.Database(dbName).Collection("profiles"), raw.Database(dbName).Collection("events")
	for _, d := range []bson.D{
		{{Key: "_id", Value: "p-jane"}, {Key: "customerId", Value: 1}, {Key: "bio", Value: "likes tea"}},
		{{Key: "_id", Value: "p-bystander"}, {Key: "customerId", Value: 2}, {Key: "bio", Value: "likes coffee"}},
		{{Key: "_id", Value: "p-lookalike"}, {Key: "customerId", Value: 10}, {Key: "bio", Value: "order id, not a customer id"}},
	} {
		if _, err := profiles.InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []bson.D{
		{{Key: "_id", Value: "e1"}, {Key: "who", Value: bson.D{{Key: "customerId", Value: "1"}}}, {Key: "ip", Value: "192.0.2.1"}},
		{{Key: "_id", Value: "e2"}, {Key: "who", Value: bson.D{{Key: "customerId", Value: int64(1)}}}, {Key: "ip", Value: "192.0.2.2"}},
		{{Key: "_id", Value: "e3"}, {Key: "who", Value: bson.D{{Key: "customerId", Value: 2}}}, {Key: "ip", Value: "198.51.100.7"}},
	} {
		if _, err := events.InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	create(t, connSecret(ns, "docs-conn", map[string]string{"uri": uri}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeMongoDB,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "docs-conn", Key: "uri"}},
		Collections: []privacyv1alpha1.CollectionMapping{
			{Name: dbName + ".profiles", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.FieldMatch{{Field: "customerId", Identifier: "customerId"}}},
			{Name: dbName + ".events", Action: privacyv1alpha1.ActionMask,
				Match: []privacyv1alpha1.FieldMatch{{Field: "who.customerId", Identifier: "customerId"}},
				Mask:  []privacyv1alpha1.FieldMask{{Field: "ip", Strategy: privacyv1alpha1.MaskRedact}}},
		},
	}})

	create(t, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	create(t, deletionRequest(ns, "erase-jane", "jane"))
	dr := waitDR(t, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	if !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		t.Errorf("conditions: %s", conditionsString(dr.Status.Conditions))
	}

	count := func(c *mongo.Collection, filter bson.D) int64 {
		n, err := c.CountDocuments(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(profiles, bson.D{{Key: "_id", Value: "p-jane"}}) != 0 {
		t.Error("the subject's profile is still there")
	}
	for _, id := range []string{"p-bystander", "p-lookalike"} {
		if count(profiles, bson.D{{Key: "_id", Value: id}}) != 1 {
			t.Errorf("profile %s was erased", id)
		}
	}
	if n := count(events, bson.D{{Key: "ip", Value: privacyv1alpha1.RedactedMarker}}); n != 2 {
		t.Errorf("%d of the subject's 2 events masked", n)
	}
	if count(events, bson.D{{Key: "_id", Value: "e3"}, {Key: "ip", Value: "198.51.100.7"}}) != 1 {
		t.Error("the bystander's event was changed")
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM customer WHERE id = 2`); n != 1 {
		t.Error("the bystander's customer row is gone")
	}

	want := map[string][2]int64{"shop": {6, 0}, "docs": {1, 2}} // erased, masked
	for name, w := range want {
		st := storeStatus(t, dr, name)
		if st.Erased != w[0] || st.Masked != w[1] || st.Remaining != 0 || st.Phase != privacyv1alpha1.StoreVerified {
			t.Errorf("store %s: erased %d masked %d (want %v), remaining %d, phase %s", name, st.Erased, st.Masked, w, st.Remaining, st.Phase)
		}
	}
	rc := verifyReceipt(t, dr)
	if len(rc.Stores) != 2 {
		t.Errorf("receipt lists %d stores", len(rc.Stores))
	}
	for _, s := range rc.Stores {
		if w := want[s.Name]; s.Erased != w[0] || s.Masked != w[1] || s.Remaining != 0 {
			t.Errorf("receipt store %s: erased %d masked %d, want %v", s.Name, s.Erased, s.Masked, w)
		}
	}
	rawStatus, _ := json.Marshal(dr.Status)
	for _, value := range []string{"jane.doe@example.com", `"10"`, `"11"`} {
		if strings.Contains(string(rawStatus), value) {
			t.Errorf("status holds a value: %s", value)
		}
	}
}
