package controllers_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

var redisDBs = make(chan int, 15)

func init() {
	for i := 1; i <= 15; i++ {
		redisDBs <- i
	}
}

// redisFixture is a Redis logical database holding the subject's sessions (deleted), cart
// (deleted) and consent log (retained), and the bystander's.
type redisFixture struct {
	rdb         *redis.Client
	url         string
	subjectKeys int64
}

func startRedisFixture(t *testing.T) *redisFixture {
	t.Helper()
	r := teststore.SharedRedis(t)
	db := <-redisDBs
	t.Cleanup(func() { redisDBs <- db })
	opts, err := redis.ParseURL(r.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f := &redisFixture{rdb: rdb, url: r.URL(db)}
	for _, ids := range []map[string]string{subjectIDs, bystanderIDs} {
		u := ids["userId"]
		must(t, rdb.Set(ctx, "session:"+u+":a", ids["email"], 0).Err())
		must(t, rdb.HSet(ctx, "session:"+u+":b", "email", ids["email"], "ip", "192.0.2.1").Err())
		must(t, rdb.RPush(ctx, "cart:"+u, "sku-1", "sku-2").Err())
		must(t, rdb.SAdd(ctx, "consent:"+u, "newsletter").Err())
	}
	f.subjectKeys = 4
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *redisFixture) spec(secretName string) privacyv1alpha1.DataStoreSpec {
	return privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeRedis,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secretName, Key: "url"}},
		Keys: []privacyv1alpha1.KeyMapping{
			{Pattern: "session:{userId}:*", Action: privacyv1alpha1.KeyActionDelete},
			{Pattern: "cart:{userId}", Action: privacyv1alpha1.KeyActionDelete},
			{Pattern: "consent:{userId}", Action: privacyv1alpha1.KeyActionRetain, RetainReason: "proof of consent (Art. 7(1))"},
		},
		Description:    "Session cache",
		DataCategories: []string{"Sessions", "Carts"},
	}
}

func redisDataStore(t *testing.T, ns, name string) *redisFixture {
	t.Helper()
	f := startRedisFixture(t)
	create(t, connSecret(ns, name+"-conn", map[string]string{"url": f.url}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: f.spec(name + "-conn")})
	return f
}

// assertErased: sessions and cart gone, consent kept, the bystander's keys untouched.
func (f *redisFixture) assertErased(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	u, b := subjectIDs["userId"], bystanderIDs["userId"]
	if n := f.rdb.Exists(ctx, "session:"+u+":a", "session:"+u+":b", "cart:"+u).Val(); n != 0 {
		t.Errorf("redis: %d of the subject's keys left", n)
	}
	if n := f.rdb.Exists(ctx, "consent:"+u).Val(); n != 1 {
		t.Error("redis: the retained consent key is gone")
	}
	if n := f.rdb.Exists(ctx, "session:"+b+":a", "session:"+b+":b", "cart:"+b, "consent:"+b).Val(); n != 4 {
		t.Errorf("redis: bystander keys left %d of 4", n)
	}
}

func (f *redisFixture) String() string { return fmt.Sprintf("redis %s", f.url) }
