package mongodb_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	teststore.CloseShared()
	os.Exit(code)
}

// env is one test's database on a FerretDB server, with a raw client to seed and inspect it.
type env struct {
	t      *testing.T
	server *teststore.Mongo
	dbName string
	uri    string
	raw    *mongo.Client
}

func newEnv(t *testing.T, server *teststore.Mongo) *env {
	t.Helper()
	if server == nil {
		server = teststore.SharedMongo(t)
	}
	db, uri := server.CreateDatabase("")
	raw, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Disconnect(context.Background()) })
	return &env{t: t, server: server, dbName: db, uri: uri, raw: raw}
}

func (e *env) coll(name string) *mongo.Collection { return e.raw.Database(e.dbName).Collection(name) }

// name is the mapped name <database>.<collection>.
func (e *env) name(coll string) string { return e.dbName + "." + coll }

func (e *env) insert(coll string, docs ...bson.D) {
	e.t.Helper()
	for _, d := range docs {
		if _, err := e.coll(coll).InsertOne(context.Background(), d); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) count(coll string, filter bson.D) int64 {
	e.t.Helper()
	n, err := e.coll(coll).CountDocuments(context.Background(), filter)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) get(coll string, id any) bson.M {
	e.t.Helper()
	var out bson.M
	if err := e.coll(coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&out); err != nil {
		e.t.Fatalf("document %v of %s: %v", id, coll, err)
	}
	return out
}

func (e *env) spec(collections ...privacyv1alpha1.CollectionMapping) *privacyv1alpha1.DataStoreSpec {
	return &privacyv1alpha1.DataStoreSpec{
		Type:        privacyv1alpha1.StoreTypeMongoDB,
		Connection:  privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "s", Key: "uri"}},
		Collections: collections,
	}
}

func (e *env) client(spec *privacyv1alpha1.DataStoreSpec, opts mongodb.Options) connector.Client {
	e.t.Helper()
	c, err := mongodb.NewProvider(opts).NewClient(context.Background(), connector.Config{
		Name: "test", Spec: spec, Secret: []byte(e.uri), HashSalt: []byte("salt"), DefaultPhoneRegion: "US",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func match(field, identifier string) []privacyv1alpha1.FieldMatch {
	return []privacyv1alpha1.FieldMatch{{Field: field, Identifier: identifier}}
}

func req(ids map[string]string) connector.Request {
	return connector.Request{ID: "r1", Identifiers: connector.Identifiers(ids)}
}

func mustErase(t *testing.T, c connector.Client, r connector.Request) *connector.EraseResult {
	t.Helper()
	res, err := c.Erase(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustVerify(t *testing.T, c connector.Client, r connector.Request) *connector.VerifyResult {
	t.Helper()
	res, err := c.Verify(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// noValueIn fails when an error's text or summary holds one of the values.
func noValueIn(t *testing.T, err error, values ...string) {
	t.Helper()
	for _, text := range []string{err.Error(), connector.Summary(err)} {
		for _, v := range values {
			if v != "" && strings.Contains(text, v) {
				t.Fatalf("error text holds an identifier value: %q", text)
			}
		}
	}
}
