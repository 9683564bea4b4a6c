package mongodb_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// TestNoTransactionsOnFerretDB: FerretDB ignores startTransaction, so even when it answers hello
// as a replica set member (--repl-set-name) the erasure takes the per-document order, and works.
func TestNoTransactionsOnFerretDB(t *testing.T) {
	ctx := context.Background()
	replica, err := teststore.StartMongoWithArgs(ctx, "--repl-set-name=rs0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replica.Close() })
	for name, server := range map[string]*teststore.Mongo{"standalone": teststore.SharedMongo(t), "replica set name": replica} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, server)
			var hello bson.M
			if err := e.raw.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
				t.Fatal(err)
			}
			if _, claims := hello["setName"]; claims != (server == replica) {
				t.Fatalf("hello: %v", hello)
			}
			e.insert("users", bson.D{{Key: "email", Value: "alice@example.com"}}, bson.D{{Key: "email", Value: "bob@example.com"}})
			c := e.client(e.spec(privacyv1alpha1.CollectionMapping{Name: e.name("users"), Match: match("email", "email"), Action: privacyv1alpha1.ActionDelete}), mongodb.Options{})
			if yes, err := mongodb.Transactional(ctx, c); err != nil || yes {
				t.Fatalf("transactional = %v, %v; want false on FerretDB", yes, err)
			}
			if res := mustErase(t, c, req(map[string]string{"email": "alice@example.com"})); res.Erased != 1 || e.count("users", bson.D{}) != 1 {
				t.Fatalf("erase: %+v", res)
			}
		})
	}
}
