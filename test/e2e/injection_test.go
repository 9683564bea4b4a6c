package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// tenKB is an identifier of 10240 bytes; its bystanders share its first 255 bytes (what a
// VARCHAR(255) or a prefix index would compare) or all but its last byte.
var tenKB = strings.Repeat("0123456789", 1024)

// hostileValues are subjects' identifiers (email and userId alike) that would erase other people's
// data if any layer spliced them into SQL, used them as LIKE or GLOB patterns, unescaped them,
// truncated them at a NUL or at a column's width, or compared them loosely.
var hostileValues = []string{
	`' OR '1'='1`,
	`1) OR (1=1`,
	`"; DROP TABLE customers; --`,
	"` OR 1=1 -- ",
	`$1`,
	`%`,
	`_`,
	`%@shop.example`,
	`*`,
	`?`,
	`[a-z]*`,
	`\`,
	"nul\x00' OR 1=1 --",
	tenKB,
}

// hostileBystanders are people whose identifiers those values would reach.
var hostileBystanders = []string{
	"alice@shop.example", // anything-matches: OR 1=1, %, *, %@shop.example
	"bob@shop.example",
	"a",                 // _, ?, [a-z]*
	"abc",               // [a-z]*
	`\\`,                // \ after unescaping
	`' or '1'='1`,       // case folding
	`' OR '1'='1 `,      // trailing-space padding (MySQL PAD SPACE collations)
	"nul",               // truncation at NUL
	tenKB[:255],         // truncation at 255
	tenKB[:10239] + "X", // the same but for the last byte
	"$2",
}

// ambiguousValue holds ':' , the separator after {userId} in "session:{userId}:*": its keys cannot
// be told from those of the bystander "a" (session:a:b:...), so the Redis connector must refuse.
const ambiguousValue = "a:b"

// accessValue is the subject of an access request; its export must hold its records only.
const accessValue = `' UNION SELECT * FROM customers --`

// deepValues are verified with deep search too: no bystander contains them, so a clean deep
// verification shows that the search compares literally.
var deepValues = map[string]bool{`[a-z]*`: true, `%@shop.example`: true, tenKB: true}

func hostilePerson(v string) person { return person{email: v, userID: v} }

// holds reports whether a store can hold the value at all: PostgreSQL text cannot hold NUL.
func holds(typ privacyv1alpha1.StoreType, v string) bool {
	return typ != privacyv1alpha1.StoreTypePostgres || !strings.ContainsRune(v, 0)
}

// keyStore is a Redis database with, per person, two sessions (deleted), a cart (deleted) and a
// consent record (retained).
type keyStore struct {
	rdb *redis.Client
	url string
}

func redisKeyStore(t *testing.T, r *teststore.Redis, db int) *keyStore {
	t.Helper()
	opts, err := redis.ParseURL(r.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return &keyStore{rdb: rdb, url: r.URL(db)}
}

func personKeys(u string) []string {
	return []string{"session:" + u + ":a", "session:" + u + ":b", "cart:" + u, "consent:" + u}
}

func (k *keyStore) seed(t *testing.T, u string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.rdb.Set(ctx, "session:"+u+":a", "token", 0).Err())
	must(k.rdb.HSet(ctx, "session:"+u+":b", "ip", "192.0.2.1").Err())
	must(k.rdb.RPush(ctx, "cart:"+u, "sku-1", "sku-2").Err())
	must(k.rdb.SAdd(ctx, "consent:"+u, "newsletter").Err())
}

func (k *keyStore) keys(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	iter := k.rdb.Scan(context.Background(), 0, "", 1000).Iterator()
	for iter.Next(context.Background()) {
		out[iter.Val()] = true
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func redisSpec(secretName string) privacyv1alpha1.DataStoreSpec {
	return privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypeRedis,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secretName, Key: "url"}},
		Keys: []privacyv1alpha1.KeyMapping{
			{Pattern: "session:{userId}:*", Action: privacyv1alpha1.KeyActionDelete},
			{Pattern: "cart:{userId}", Action: privacyv1alpha1.KeyActionDelete},
			{Pattern: "consent:{userId}", Action: privacyv1alpha1.KeyActionRetain, RetainReason: "proof of consent (Art. 7(1))"},
		},
	}
}

func TestHostileIdentifiersEraseOnlyTheirSubject(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)
	pgDSN, err := teststore.SharedPostgres(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	mariaDSN, err := teststore.SharedMariaDB(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	shops := map[string]*shop{
		"pg":    openShop(t, privacyv1alpha1.StoreTypePostgres, pgDSN),
		"maria": openShop(t, privacyv1alpha1.StoreTypeMySQL, mariaDSN),
		"lite":  sqliteShop(t),
	}
	ks := redisKeyStore(t, teststore.SharedRedis(t), 1)

	subjects := append(append([]string{}, hostileValues...), ambiguousValue)
	everyone := append(append(append([]string{}, subjects...), hostileBystanders...), accessValue)
	for name, s := range shops {
		for _, v := range everyone {
			if holds(s.storeType, v) {
				s.seed(t, hostilePerson(v))
			}
		}
		s.dataStore(t, env.Client, ns, name, 30*time.Second)
	}
	for _, v := range everyone {
		ks.seed(t, v)
	}
	// The key the ambiguous subject's glob would also match.
	if err := ks.rdb.Set(ctx, "session:a:b:c", "token of the bystander a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	keysBefore := ks.keys(t)
	snapshots := map[string]map[string]bool{}
	for name, s := range shops {
		snapshots[name] = s.snapshot(t)
	}
	create(t, env.Client, connSecret(ns, "cache-conn", map[string]string{"url": ks.url}))
	create(t, env.Client, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cache"}, Spec: redisSpec("cache-conn")})

	m := startManager(t, "manager", managerOptions{})
	names := map[string]string{}
	for i, v := range subjects {
		name := fmt.Sprintf("hostile-%02d", i)
		names[v] = name
		create(t, env.Client, secret(ns, name, hostilePerson(v).ids()))
		create(t, env.Client, deletionRequest(ns, name, name, func(dr *privacyv1alpha1.DeletionRequest) {
			if deepValues[v] {
				dr.Spec.Verification = &privacyv1alpha1.Verification{Deep: true}
			}
		}))
	}
	create(t, env.Client, secret(ns, "access", hostilePerson(accessValue).ids()))
	create(t, env.Client, accessRequest(ns, "access", "access"))

	var completedNames []string
	for _, v := range hostileValues {
		completedNames = append(completedNames, names[v])
	}
	drs := waitAllCompleted(t, env.Client, ns, completedNames, 2*settle)
	for _, v := range hostileValues {
		dr := drs[names[v]]
		for name, s := range shops {
			st := storeStatus(t, dr, name)
			e, mk, r := int64(wantErased), int64(wantMasked), int64(wantRetained)
			if !holds(s.storeType, v) {
				e, mk, r = 0, 0, 0
			}
			if st.Phase != privacyv1alpha1.StoreVerified || st.Erased != e || st.Masked != mk || st.Retained != r || st.Remaining != 0 {
				t.Errorf("subject %s, store %s: %s erased %d masked %d retained %d remaining %d, want Verified %d/%d/%d/0",
					label(hostilePerson(v)), name, st.Phase, st.Erased, st.Masked, st.Retained, st.Remaining, e, mk, r)
			}
		}
		if st := storeStatus(t, dr, "cache"); st.Phase != privacyv1alpha1.StoreVerified || st.Erased != 3 || st.Retained != 1 || st.Remaining != 0 {
			t.Errorf("subject %s, store cache: %s erased %d retained %d remaining %d, want Verified 3/1/0",
				label(hostilePerson(v)), st.Phase, st.Erased, st.Retained, st.Remaining)
		}
		verifyReceipt(t, env.Client, dr)
	}

	// The ambiguous subject: erased from the SQL stores, refused by Redis with a reason, and the
	// bystander's key its pattern would have matched is still there.
	amb := waitDR(t, env.Client, ns, names[ambiguousValue], privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed, settle)
	if st := storeStatus(t, amb, "cache"); st.Phase != privacyv1alpha1.StoreFailed || !strings.Contains(st.Message, "separator") {
		t.Errorf("the ambiguous subject in Redis: %s %q, want Failed naming the separator", st.Phase, st.Message)
	}
	for name := range shops {
		if st := storeStatus(t, amb, name); st.Phase != privacyv1alpha1.StoreVerified {
			t.Errorf("the ambiguous subject in %s: %s %q", name, st.Phase, st.Message)
		}
	}

	// The access export holds the subject's records only: 4 per shop, 4 keys.
	eventually(t, settle, func() (bool, string) {
		var ar privacyv1alpha1.AccessRequest
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "access"}, &ar); err != nil {
			return false, err.Error()
		}
		if !meta.IsStatusConditionTrue(ar.Status.Conditions, privacyv1alpha1.ConditionCollected) || ar.Status.Export == nil {
			return false, fmt.Sprintf("access request: %+v", ar.Status)
		}
		for _, s := range ar.Status.Stores {
			if s.Records != 4 {
				t.Errorf("the access export holds %d records from %s, want the subject's 4", s.Records, s.Name)
			}
		}
		return true, ""
	})

	// What each store holds now: exactly what it held, minus the subjects' erased records.
	for name, s := range shops {
		for _, v := range hostileValues {
			if holds(s.storeType, v) {
				s.assertErased(t, hostilePerson(v))
			}
		}
		s.assertErased(t, hostilePerson(ambiguousValue))
		for _, v := range append(append([]string{}, hostileBystanders...), accessValue) {
			s.assertIntact(t, hostilePerson(v))
		}
		isSubject := map[string]bool{}
		for _, v := range subjects {
			isSubject[v] = true
		}
		after := s.snapshot(t)
		for row := range snapshots[name] {
			fields := strings.Split(row, "\x1f")
			if isSubject[fields[1]] || isSubject[fields[2]] {
				continue
			}
			if !after[row] {
				t.Errorf("%s: a row of someone else changed or went: %.80q", name, row)
			}
		}
	}
	keysAfter := ks.keys(t)
	var lost []string
	for k := range keysBefore {
		subjectKey := false
		for _, v := range hostileValues {
			for i, pk := range personKeys(v) {
				if k == pk && i < 3 {
					subjectKey = true
				}
			}
		}
		if subjectKey {
			if keysAfter[k] {
				t.Errorf("redis: the subject's key %.60q is still there", k)
			}
			continue
		}
		if !keysAfter[k] {
			lost = append(lost, fmt.Sprintf("%.60q", k))
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("redis: keys of others were deleted: %s", strings.Join(lost, ", "))
	}

	var all []person
	for _, v := range append(append([]string{}, subjects...), accessValue) {
		all = append(all, hostilePerson(v))
	}
	assertNoLeaks(t, env.Client, ns, []*manager{m}, all)
}
