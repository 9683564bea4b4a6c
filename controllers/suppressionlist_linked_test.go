package controllers_test

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// A person found by a sweep in the SQL shop is followed to the Redis cache, which knows them only
// by the customer and order ids the shop provides: their keys go too, the shop's rows last; keys
// that look alike (a customer id equal to one of their order ids) and the bystander's stay.
func TestSuppressionListSweepFollowsLinksAcrossStores(t *testing.T) {
	db, dsn := linkedShop(t)
	rf := startRedisFixture(t)
	ctx := context.Background()
	rdb := rf.rdb
	must(t, rdb.FlushDB(ctx).Err())
	subjectKeys := []string{"cart:1", "order:10:lines", "order:11:lines"}
	bystanderKeys := []string{"cart:2", "cart:10", "cart:11", "cart:1x", "order:20:lines", "order:1:lines", "order:100:lines"}
	for _, k := range append(slices.Clone(subjectKeys), bystanderKeys...) {
		must(t, rdb.Set(ctx, k, "v", 0).Err())
	}
	startOperator(t, withSuppressionLists)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: linkedSpec("shop-conn")})
	create(t, connSecret(ns, "cache-conn", map[string]string{"url": rf.url}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cache"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeRedis,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "cache-conn", Key: "url"}},
		Keys: []privacyv1alpha1.KeyMapping{
			{Pattern: "cart:{customerId}", Action: privacyv1alpha1.KeyActionDelete},
			{Pattern: "order:{orderId}:*", Action: privacyv1alpha1.KeyActionDelete},
		},
	}})
	create(t, dropSecret(ns, "drop-download", map[string]string{"email.csv": "A-1," + dropHash(subjectIDs["email"]) + "\n"}))
	create(t, dropList(ns, "drop", "drop-download", time.Hour))

	l := waitSupl(t, ns, "drop", 60*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return l.Status.Sweeps >= 1 && reportOf(t, l)["A-1"] != ""
	})
	t.Logf("%s", describeSupl(l))
	if r := reportOf(t, l); r["A-1"] != "3" || !isTrue(l.Status.Conditions, privacyv1alpha1.ConditionReady) {
		t.Errorf("report %s, conditions %s", describeReport(r), conditionsString(l.Status.Conditions))
	}
	// The shop's six rows and the cache's three keys, counted where the person was found.
	if st := suplStore(t, l, "shop"); st.Erased != 9 {
		t.Errorf("shop: erased %d, want 9 (6 rows, 3 linked keys)", st.Erased)
	}
	if n := rdb.Exists(ctx, subjectKeys...).Val(); n != 0 {
		t.Errorf("redis: %d of the person's linked keys left", n)
	}
	for _, k := range bystanderKeys {
		if rdb.Exists(ctx, k).Val() != 1 {
			t.Errorf("redis: bystander key %s was deleted", k)
		}
	}
	for query, want := range map[string]int{
		`SELECT COUNT(*) FROM customer WHERE id = 1`:                 0,
		`SELECT COUNT(*) FROM orders WHERE customer_id = 1`:          0,
		`SELECT COUNT(*) FROM order_item WHERE order_id IN (10, 11)`: 0,
		`SELECT COUNT(*) FROM customer WHERE id = 2`:                 1,
		`SELECT COUNT(*) FROM order_item WHERE order_id = 20`:        1,
	} {
		if got := countRows(t, db, query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
}
