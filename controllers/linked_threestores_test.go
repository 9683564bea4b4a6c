package controllers_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// The subject's avatar id lives only in its MongoDB profile: the S3 avatars are reached through
// it, two hops from the email (PostgreSQL gives customerId, MongoDB gives avatarId).
const (
	subjectAvatar   = "av-5d0c9e"
	bystanderAvatar = "av-77aa01"
)

// threeStores is the linked shop of linkedShop in PostgreSQL, a MongoDB store of profiles and
// events keyed by customerId, and an S3 store of uploads keyed by customerId (a versioned bucket)
// and avatars keyed by the avatarId the profiles provide, in one namespace with the operator
// running. Every store holds the subject's data, a bystander's and look-alikes: customer 10 and
// users/11/ are keyed by numbers that are the subject's order ids, not a customer id.
type threeStores struct {
	ns                string
	db                *sql.DB
	profiles, events  *mongo.Collection
	s3                *minio.Client
	uploads, avatars  string
	pgBystanders      string
	mongoBystanders   map[string]bson.Raw
	objectBystanders  map[string][]byte // "bucket/key@version" -> content
	subjectVersionsS3 int64
}

func startThreeStores(t *testing.T) *threeStores {
	t.Helper()
	ctx := context.Background()
	f := &threeStores{}
	var dsn string
	f.db, dsn = linkedShop(t)
	f.pgBystanders = threeStoresBystanderRows(t, f.db)

	dbName, uri := teststore.SharedMongo(t).CreateDatabase("")
	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	f.profiles, f.events = mc.Database(dbName).Collection("profiles"), mc.Database(dbName).Collection("events")
	f.insert(t, f.profiles,
		bson.D{{Key: "_id", Value: "p-jane"}, {Key: "customerId", Value: 1}, {Key: "avatar", Value: subjectAvatar}, {Key: "bio", Value: "likes tea"}},
		bson.D{{Key: "_id", Value: "p-bystander"}, {Key: "customerId", Value: 2}, {Key: "avatar", Value: bystanderAvatar}, {Key: "bio", Value: "likes coffee"}},
		bson.D{{Key: "_id", Value: "p-lookalike"}, {Key: "customerId", Value: 10}, {Key: "avatar", Value: "av-000010"}, {Key: "bio", Value: "an order id, not a customer id"}})
	f.insert(t, f.events,
		bson.D{{Key: "_id", Value: "e1"}, {Key: "who", Value: bson.D{{Key: "customerId", Value: "1"}}}, {Key: "ip", Value: "192.0.2.1"}},
		bson.D{{Key: "_id", Value: "e2"}, {Key: "who", Value: bson.D{{Key: "customerId", Value: int64(1)}}}, {Key: "ip", Value: "192.0.2.2"}},
		bson.D{{Key: "_id", Value: "e3"}, {Key: "who", Value: bson.D{{Key: "customerId", Value: 2}}}, {Key: "ip", Value: "198.51.100.7"}},
		bson.D{{Key: "_id", Value: "e4"}, {Key: "who", Value: bson.D{{Key: "customerId", Value: "11"}}}, {Key: "ip", Value: "198.51.100.8"}})
	f.mongoBystanders = map[string]bson.Raw{}
	for _, id := range []string{"p-bystander", "p-lookalike"} {
		f.mongoBystanders["profiles/"+id] = f.document(t, f.profiles, id)
	}
	for _, id := range []string{"e3", "e4"} {
		f.mongoBystanders["events/"+id] = f.document(t, f.events, id)
	}

	srv, err := teststore.StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if f.s3, err = srv.Client(); err != nil {
		t.Fatal(err)
	}
	if f.uploads, err = srv.CreateBucket(ctx, "uploads", true, false); err != nil {
		t.Fatal(err)
	}
	if f.avatars, err = srv.CreateBucket(ctx, "avatars", false, false); err != nil {
		t.Fatal(err)
	}
	// The subject: three versions of one object, one more object, and an object whose current
	// version is a delete marker (its data is still there: 1 version + 1 marker).
	for i := range 3 {
		f.put(t, f.uploads, "users/1/profile.json", `{"version":`+strconv.Itoa(i+1)+`}`)
	}
	f.put(t, f.uploads, "users/1/docs/contract.txt", "the subject's contract")
	f.put(t, f.uploads, "users/1/old.txt", "deleted, but only by a marker")
	if err := f.s3.RemoveObject(ctx, f.uploads, "users/1/old.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	f.put(t, f.avatars, "avatars/"+subjectAvatar+".png", "subject avatar bytes")
	f.subjectVersionsS3 = 3 + 1 + 2 + 1
	// Bystanders and look-alikes.
	f.put(t, f.uploads, "users/2/profile.json", "bystander v1")
	f.put(t, f.uploads, "users/2/profile.json", "bystander v2")
	f.put(t, f.uploads, "users/11/profile.json", "an order id, not a customer id")
	f.put(t, f.uploads, "users/1.json", "not under the prefix")
	f.put(t, f.avatars, "avatars/"+bystanderAvatar+".png", "bystander avatar bytes")
	f.put(t, f.avatars, "avatars/"+subjectAvatar+".png.bak", "a longer key")
	f.objectBystanders = f.objectContents(t, func(key string) bool { return !isThreeStoresSubjectObject(key) })

	startOperator(t)
	f.ns = newNamespace(t, nil)
	create(t, connSecret(f.ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "shop"}, Spec: linkedSpec("shop-conn")})
	create(t, connSecret(f.ns, "docs-conn", map[string]string{"uri": uri}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "docs"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeMongoDB,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "docs-conn", Key: "uri"}},
		Collections: []privacyv1alpha1.CollectionMapping{
			{Name: dbName + ".profiles", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.FieldMatch{{Field: "customerId", Identifier: "customerId"}},
				Provides: []privacyv1alpha1.FieldProvide{{Identifier: "avatarId", Field: "avatar"}}},
			{Name: dbName + ".events", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.FieldMatch{{Field: "who.customerId", Identifier: "customerId"}}},
		},
	}})
	create(t, connSecret(f.ns, "files-conn", map[string]string{"credentials": srv.Secret()}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "files"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypeS3,
		// versitygw in the tests is plain http on loopback.
		Connection: privacyv1alpha1.Connection{URL: srv.Endpoint(), AllowInsecureHTTP: true,
			SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "files-conn", Key: "credentials"}},
		Objects: []privacyv1alpha1.ObjectMapping{
			{Bucket: f.uploads, Key: "users/{customerId}/", Action: privacyv1alpha1.ObjectActionDelete},
			{Bucket: f.avatars, Key: "avatars/{avatarId}.png", Action: privacyv1alpha1.ObjectActionDelete},
		},
	}})
	create(t, secret(f.ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	return f
}

// isThreeStoresSubjectObject tells the subject's object keys of both buckets.
func isThreeStoresSubjectObject(key string) bool {
	return strings.HasPrefix(key, "users/1/") || key == "avatars/"+subjectAvatar+".png"
}

// threeStoresBystanderRows is every row of the shop that is not the subject's, as text.
func threeStoresBystanderRows(t *testing.T, db *sql.DB) string {
	t.Helper()
	var s string
	err := db.QueryRow(`SELECT concat_ws(' | ',
		(SELECT string_agg(c::text, ',' ORDER BY id) FROM customer c WHERE id <> 1),
		(SELECT string_agg(o::text, ',' ORDER BY id) FROM orders o WHERE customer_id <> 1),
		(SELECT string_agg(i::text, ',' ORDER BY id) FROM order_item i WHERE order_id NOT IN (10, 11)))`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *threeStores) insert(t *testing.T, c *mongo.Collection, docs ...bson.D) {
	t.Helper()
	for _, d := range docs {
		if _, err := c.InsertOne(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *threeStores) document(t *testing.T, c *mongo.Collection, id string) bson.Raw {
	t.Helper()
	raw, err := c.FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		t.Fatalf("%s %s: %v", c.Name(), id, err)
	}
	return slices.Clone(raw)
}

func (f *threeStores) put(t *testing.T, bucket, key, body string) {
	t.Helper()
	_, err := f.s3.PutObject(context.Background(), bucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
}

// objectContents reads every object version (delete markers as empty) of both buckets whose key
// keep selects, by "bucket/key@version".
func (f *threeStores) objectContents(t *testing.T, keep func(string) bool) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	for _, b := range []string{f.uploads, f.avatars} {
		for o := range f.s3.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if !keep(o.Key) {
				continue
			}
			id := b + "/" + o.Key + "@" + o.VersionID
			if o.IsDeleteMarker {
				out[id] = nil
				continue
			}
			r, err := f.s3.GetObject(ctx, b, o.Key, minio.GetObjectOptions{VersionID: f.addressable(o.VersionID)})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(r)
			_ = r.Close()
			if err != nil {
				t.Fatalf("read %s: %v", id, err)
			}
			out[id] = body
		}
	}
	return out
}

// addressable is the version to ask for: none for the "null" version of an unversioned bucket.
func (f *threeStores) addressable(versionID string) string {
	if versionID == "null" {
		return ""
	}
	return versionID
}

// assertBystandersIntact compares what is not the subject's with what was seeded, byte for byte.
func (f *threeStores) assertBystandersIntact(t *testing.T) {
	t.Helper()
	if got := threeStoresBystanderRows(t, f.db); got != f.pgBystanders {
		t.Errorf("postgres: bystander rows %q, seeded %q", got, f.pgBystanders)
	}
	for id, want := range f.mongoBystanders {
		coll, doc, _ := strings.Cut(id, "/")
		c := f.profiles
		if coll == "events" {
			c = f.events
		}
		if got := f.document(t, c, doc); !bytes.Equal(got, want) {
			t.Errorf("mongodb: %s changed: %s, seeded %s", id, got, want)
		}
	}
	got := f.objectContents(t, func(key string) bool { return !isThreeStoresSubjectObject(key) })
	if len(got) != len(f.objectBystanders) {
		t.Errorf("s3: %d bystander object versions, seeded %d", len(got), len(f.objectBystanders))
	}
	for id, want := range f.objectBystanders {
		if body, ok := got[id]; !ok || !bytes.Equal(body, want) {
			t.Errorf("s3: %s is %q (present %v), seeded %q", id, body, ok, want)
		}
	}
}

// assertNoValuesIn checks the objects' JSON and the namespace's events for each value.
func (f *threeStores) assertNoValuesIn(t *testing.T, values []string, objs ...client.Object) {
	t.Helper()
	var evs corev1.EventList
	if err := env.Client.List(context.Background(), &evs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	text := mustJSON(t, &evs)
	for _, o := range objs {
		text += mustJSON(t, o)
	}
	for _, v := range values {
		if strings.Contains(text, v) {
			t.Errorf("status or events hold %s", v)
		}
	}
}

// The email alone, in PostgreSQL, reaches the subject's MongoDB documents through customerId and
// the S3 objects through customerId and the avatarId MongoDB provides: every document and every
// object version of the subject's is gone, the bystanders and look-alikes are as seeded, and
// status and the signed receipt count what was done, versions included.
func TestLinkedThreeStoresErasure(t *testing.T) {
	f := startThreeStores(t)
	ctx := context.Background()
	create(t, deletionRequest(f.ns, "erase-jane", "jane"))
	dr := waitDR(t, f.ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, 2*settle)
	if !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) || !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionErased) {
		t.Errorf("conditions: %s", conditionsString(dr.Status.Conditions))
	}

	if n := countRows(t, f.db, `SELECT (SELECT COUNT(*) FROM customer WHERE id = 1) + (SELECT COUNT(*) FROM orders WHERE customer_id = 1) +
		(SELECT COUNT(*) FROM order_item WHERE order_id IN (10, 11))`); n != 0 {
		t.Errorf("postgres: %d of the subject's rows left", n)
	}
	for c, filter := range map[*mongo.Collection]bson.D{
		f.profiles: {{Key: "customerId", Value: 1}},
		f.events:   {{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"e1", "e2"}}}}},
	} {
		if n, err := c.CountDocuments(ctx, filter); err != nil || n != 0 {
			t.Errorf("mongodb %s: %d of the subject's documents left (%v)", c.Name(), n, err)
		}
	}
	if left := f.objectContents(t, isThreeStoresSubjectObject); len(left) != 0 {
		t.Errorf("s3: the subject's object versions left: %v", slices.Sorted(maps.Keys(left)))
	}
	f.assertBystandersIntact(t)

	want := map[string]int64{"shop": 6, "docs": 3, "files": f.subjectVersionsS3}
	for name, erased := range want {
		st := storeStatus(t, dr, name)
		if st.Erased != erased || st.Masked != 0 || st.Retained != 0 || st.Remaining != 0 || st.Phase != privacyv1alpha1.StoreVerified {
			t.Errorf("store %s: erased %d (want %d), masked %d, retained %d, remaining %d, phase %s",
				name, st.Erased, erased, st.Masked, st.Retained, st.Remaining, st.Phase)
		}
	}
	wantDerived := map[string][]privacyv1alpha1.DerivedIdentifier{
		"shop":  {{Identifier: "customerId", Values: 1}, {Identifier: "orderId", Values: 2}},
		"docs":  {{Identifier: "avatarId", Values: 1}},
		"files": nil,
	}
	for name, w := range wantDerived {
		if got := storeStatus(t, dr, name).Derived; !slices.Equal(got, w) {
			t.Errorf("store %s derived %+v, want %+v", name, got, w)
		}
	}
	rc := verifyReceipt(t, dr)
	if len(rc.Stores) != 3 {
		t.Errorf("receipt lists %d stores", len(rc.Stores))
	}
	for _, s := range rc.Stores {
		if s.Erased != want[s.Name] || s.Remaining != 0 || s.Masked != 0 || s.VerifiedAt.IsZero() {
			t.Errorf("receipt store %s: erased %d (want %d), masked %d, remaining %d", s.Name, s.Erased, want[s.Name], s.Masked, s.Remaining)
		}
	}
	assertNoIdentifiersIn(t, f.ns, dr)
	// The derived values, and object keys holding them, are as personal as the email.
	f.assertNoValuesIn(t, []string{subjectAvatar, `"10"`, `"11"`, "users/1/", "192.0.2."}, dr)
}

// An access request over the same three stores exports the subject's rows, documents and every
// object version (with the small objects' content), reached through the derived identifiers, and
// nothing of the bystanders'.
func TestLinkedThreeStoresAccessExport(t *testing.T) {
	f := startThreeStores(t)
	create(t, accessRequest(f.ns, "export-jane", "jane"))
	ar := waitAR(t, f.ns, "export-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, 2*settle)
	doc, raw := readExport(t, ar)
	if !doc.Complete || len(doc.Stores) != 3 {
		t.Fatalf("export: complete %v, %d stores", doc.Complete, len(doc.Stores))
	}
	// Versions, not delete markers: profile.json 3, contract 1, old.txt 1, the avatar 1.
	wantKeys := []string{"avatars/" + subjectAvatar + ".png", "users/1/docs/contract.txt", "users/1/old.txt",
		"users/1/profile.json", "users/1/profile.json", "users/1/profile.json"}
	wantRecords := map[string]int64{"shop": 6, "docs": 3, "files": int64(len(wantKeys))}
	for _, s := range doc.Stores {
		if s.RecordCount != wantRecords[s.Name] {
			t.Errorf("export store %s: %d records, want %d", s.Name, s.RecordCount, wantRecords[s.Name])
		}
		var keys []string
		for _, l := range s.Locations {
			for _, r := range l.Records {
				keys = append(keys, r.Key) // the object key; a document's _id
			}
		}
		slices.Sort(keys)
		switch s.Type {
		case string(privacyv1alpha1.StoreTypeS3):
			if !slices.Equal(keys, wantKeys) {
				t.Errorf("s3 export keys %q, want %q", keys, wantKeys)
			}
		case string(privacyv1alpha1.StoreTypeMongoDB):
			if want := []string{"e1", "e2", "p-jane"}; !slices.Equal(keys, want) {
				t.Errorf("mongodb export documents %q, want %q", keys, want)
			}
		}
	}
	for _, content := range []string{"the subject's contract", `{\"version\":3}`, "subject avatar bytes", "likes tea", "192.0.2.2"} {
		if !strings.Contains(raw, content) {
			t.Errorf("the export lacks the subject's %s", content)
		}
	}
	for _, other := range []string{"bystander v", "an order id, not a customer id", "bystander avatar", "likes coffee", "198.51.100.", "a longer key", bystanderAvatar} {
		if strings.Contains(raw, other) {
			t.Errorf("the export holds a bystander's %s", other)
		}
	}
	assertNoIdentifiersIn(t, f.ns, ar)
	f.assertNoValuesIn(t, []string{subjectAvatar, "users/1/"}, ar)
}
