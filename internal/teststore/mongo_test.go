package teststore

import (
	"context"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestMongo: FerretDB answers on its port, keeps documents across Stop and Start, refuses
// connections while stopped, and Close removes its directory.
func TestMongo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := StartMongo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	db, uri := m.CreateDatabase("")
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	coll := client.Database(db).Collection("people")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "email", Value: "a@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	if _, err := coll.CountDocuments(short, bson.D{}); err == nil {
		t.Fatal("count succeeded against a stopped server")
	}
	cancelShort()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "email", Value: "a@example.com"}})
	if err != nil || n != 1 {
		t.Fatalf("after restart: %d documents, %v; want 1", n, err)
	}
	base := m.baseDir
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); err == nil {
		t.Fatalf("Close left %s behind", base)
	}
}
