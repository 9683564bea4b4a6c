package redis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/redis"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	teststore.CloseShared()
	os.Exit(code)
}

var dbs = make(chan int, 15)

func init() {
	for i := 1; i <= 15; i++ {
		dbs <- i
	}
}

type env struct {
	rdb    *goredis.Client
	url    string
	client connector.Client
}

func keys() []privacyv1alpha1.KeyMapping {
	return []privacyv1alpha1.KeyMapping{
		{Pattern: "session:{userId}:*", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "cart:{userId}", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "profile:{email}:*", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "consent:{userId}", Action: privacyv1alpha1.KeyActionRetain, RetainReason: "proof of consent"},
	}
}

func setup(t *testing.T, server *teststore.Redis) *env {
	t.Helper()
	if server == nil {
		server = teststore.SharedRedis(t)
	}
	db := <-dbs
	t.Cleanup(func() { dbs <- db })
	url := server.URL(db)
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return &env{rdb: rdb, url: url, client: newClient(t, url, keys())}
}

func newClient(t *testing.T, url string, km []privacyv1alpha1.KeyMapping) connector.Client {
	t.Helper()
	c, err := redis.NewProvider().NewClient(context.Background(), connector.Config{Name: "test", Secret: []byte(url + "\n"),
		Spec: &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeRedis, Keys: km,
			Connection: privacyv1alpha1.Connection{Timeout: &metav1.Duration{Duration: 3e9}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// seed writes one key of every type under the person's session pattern, a cart, a profile and a
// consent record.
func seed(t *testing.T, rdb *goredis.Client, userID, email string) int {
	t.Helper()
	ctx := context.Background()
	p := "session:" + userID + ":"
	for _, err := range []error{
		rdb.Set(ctx, p+"s", "v", 0).Err(),
		rdb.HSet(ctx, p+"h", "f", "v").Err(),
		rdb.RPush(ctx, p+"l", "a", "b").Err(),
		rdb.SAdd(ctx, p+"set", "m").Err(),
		rdb.ZAdd(ctx, p+"z", goredis.Z{Score: 1, Member: "m"}).Err(),
		rdb.XAdd(ctx, &goredis.XAddArgs{Stream: p + "x", Values: map[string]any{"k": "v"}}).Err(),
		rdb.Set(ctx, "cart:"+userID, "c", 0).Err(),
		rdb.Set(ctx, "profile:"+email+":main", "p", 0).Err(),
		rdb.Set(ctx, "consent:"+userID, "yes", 0).Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return 8 // deletable keys
}

func ids(userID, email string) connector.Identifiers {
	return connector.Identifiers{"userId": userID, "email": email}
}

func exists(t *testing.T, rdb *goredis.Client, ks ...string) int64 {
	t.Helper()
	n, err := rdb.Exists(context.Background(), ks...).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEraseVerifyCollectRetain(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	want := seed(t, e.rdb, "a", "a@x.org")
	seed(t, e.rdb, "ab", "a@x.org.uk")
	seed(t, e.rdb, "a*", "b@x.org")
	subject := connector.Request{ID: "r1", Identifiers: ids("a", "a@x.org")}

	if _, err := e.client.Check(ctx); err != nil {
		t.Fatal(err)
	}
	col, err := e.client.Collect(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if len(col.Records) != want+1 {
		t.Errorf("collected %d records, want %d", len(col.Records), want+1)
	}
	types := map[string]bool{}
	for _, r := range col.Records {
		types[r.Data["type"].(string)] = true
		if !strings.Contains(r.Key, ":a:") && r.Key != "cart:a" && r.Key != "consent:a" && r.Key != "profile:a@x.org:main" {
			t.Errorf("collected someone else's key %q", r.Key)
		}
	}
	if len(types) != 6 {
		t.Errorf("types %v", types)
	}

	dry, err := e.client.Erase(ctx, connector.Request{ID: "r1", Identifiers: subject.Identifiers, DryRun: true})
	if err != nil || dry.Erased != int64(want) || dry.Retained != 1 {
		t.Fatalf("dry run %+v %v", dry, err)
	}
	if n := exists(t, e.rdb, "cart:a"); n != 1 {
		t.Fatal("dry run deleted")
	}
	res, err := e.client.Erase(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if res.Erased != int64(want) || res.Retained != 1 || len(res.RetainedLocations) != 1 || res.RetainedLocations[0].Reason != "proof of consent" {
		t.Errorf("erase %+v", res)
	}
	again, err := e.client.Erase(ctx, subject)
	if err != nil || again.Erased != 0 {
		t.Errorf("second erase %+v %v", again, err)
	}
	v, err := e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 0 || v.Retained != 1 {
		t.Errorf("verify %+v %v", v, err)
	}
	if n := exists(t, e.rdb, "consent:a"); n != 1 {
		t.Error("retained key deleted")
	}
	// Bystanders: "ab" and the literal "a*" are other people.
	for _, u := range []string{"ab", "a*"} {
		if n := exists(t, e.rdb, "session:"+u+":s", "session:"+u+":h", "session:"+u+":x", "cart:"+u, "consent:"+u); n != 5 {
			t.Errorf("bystander %q lost keys: %d of 5 left", u, n)
		}
	}
	if n := exists(t, e.rdb, "profile:a@x.org.uk:main"); n != 1 {
		t.Error("bystander profile deleted")
	}

	// Data that comes back is found.
	e.rdb.Set(ctx, "session:a:restored", "v", 0)
	v, err = e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 1 || len(v.RemainingLocations) != 1 || v.RemainingLocations[0].Location != "session:{userId}:*" {
		t.Errorf("verify after restore %+v %v", v, err)
	}
}

func TestDeepVerifyFindsUnmappedKeys(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	seed(t, e.rdb, "u-4711", "a@x.org")
	e.rdb.Set(ctx, "legacy/a@x.org/prefs", "v", 0)
	e.rdb.Set(ctx, "legacy/b@x.org/prefs", "v", 0)
	subject := connector.Request{ID: "r", Identifiers: ids("u-4711", "a@x.org")}
	if _, err := e.client.Erase(ctx, subject); err != nil {
		t.Fatal(err)
	}
	v, err := e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 0 {
		t.Fatalf("shallow %+v %v", v, err)
	}
	subject.Deep = true
	v, err = e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 1 || v.RemainingLocations[0].Location != "(deep scan: key names)" {
		t.Errorf("deep %+v %v", v, err)
	}
}

// Hostile identifier values erase the subject's own keys and nothing else.
func TestHostileIdentifiers(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	values := []string{`'`, `"`, `%`, `_`, `*`, `?`, `[`, `]`, `[a-z]`, `\`, `\*`, `^`, `-`, "a\x00b", strings.Repeat("x", 10<<10), "ünïcødé✓", "a b", "{userId}"}
	for _, v := range values {
		seed(t, e.rdb, v, v+"@h")
	}
	// Bystanders whose keys the unescaped patterns would match.
	for _, b := range []string{"x", "ab", "zz", "a", "aXb", "\\x", "a[", "b"} {
		seed(t, e.rdb, "by-"+b, "by-"+b+"@h")
		e.rdb.Set(ctx, "session:"+b+":s", "v", 0)
	}
	for _, v := range values {
		label := v
		if len(label) > 12 {
			label = label[:12]
		}
		t.Run(fmt.Sprintf("%q", label), func(t *testing.T) {
			subject := connector.Request{ID: "r", Identifiers: ids(v, v+"@h")}
			before, _ := e.rdb.DBSize(ctx).Result()
			res, err := e.client.Erase(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			after, _ := e.rdb.DBSize(ctx).Result()
			if res.Erased != 8 || before-after != 8 {
				t.Errorf("erased %d (keys %d -> %d), want exactly the subject's 8", res.Erased, before, after)
			}
			if vr, err := e.client.Verify(ctx, subject); err != nil || vr.Remaining != 0 {
				t.Errorf("verify %+v %v", vr, err)
			}
		})
	}
	for _, b := range []string{"x", "ab", "zz", "a", "aXb", "\\x", "a[", "b"} {
		if n := exists(t, e.rdb, "session:"+b+":s"); n != 1 {
			t.Errorf("bystander session %q deleted", b)
		}
	}
}

func TestManyKeys(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	pipe := e.rdb.Pipeline()
	for i := 0; i < 20000; i++ {
		pipe.Set(ctx, fmt.Sprintf("session:%d:%d", 1000+i%500, i), "v", 0)
	}
	for i := 0; i < 300; i++ {
		pipe.Set(ctx, fmt.Sprintf("session:7:%d", i), "v", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Erase(ctx, connector.Request{ID: "r", Identifiers: connector.Identifiers{"userId": "7"}})
	if err != nil || res.Erased != 300 {
		t.Fatalf("%+v %v", res, err)
	}
	if n, _ := e.rdb.DBSize(ctx).Result(); n != 20000 {
		t.Errorf("%d keys left, want the 20000 bystander keys", n)
	}
}

func TestWrongPasswordAndOutage(t *testing.T) {
	ctx := context.Background()
	server, err := teststore.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	wrong := strings.Replace(server.URL(0), server.Password, "wrong", 1)
	c := newClient(t, wrong, keys())
	if _, err := c.Check(ctx); connector.KindOf(err) != connector.KindAuth {
		t.Errorf("wrong password: %v", err)
	} else if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the password is in the error: %v", err)
	}

	e := setup(t, server)
	seed(t, e.rdb, "a", "a@x.org")
	if err := server.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Erase(ctx, connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")})
	if connector.KindOf(err) != connector.KindUnavailable || !connector.IsTransient(err) {
		t.Fatalf("server down: %v", err)
	}
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted server has lost its data (no persistence): erasure succeeds with nothing to do.
	if _, err := e.client.Erase(ctx, connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")}); err != nil {
		t.Errorf("after restart: %v", err)
	}
}

func TestInvalidConfig(t *testing.T) {
	_, err := redis.NewProvider().NewClient(context.Background(), connector.Config{Secret: []byte("redis://:hunter2@[::1"),
		Spec: &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeRedis, Keys: keys()}})
	if connector.KindOf(err) != connector.KindInvalid || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("%v", err)
	}
	for _, bad := range []string{"session:*", "session:{userId}*", "a*{userId}:*", "x:{userId}:?", "x:{userId}:[a]*"} {
		err := redis.NewProvider().ValidateSpec(&privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeRedis,
			Keys: []privacyv1alpha1.KeyMapping{{Pattern: bad, Action: privacyv1alpha1.KeyActionDelete}}})
		var ce *connector.Error
		if !errors.As(err, &ce) || ce.Kind != connector.KindMapping {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

// A value holding the pattern's separator would match other people's keys: nothing is erased and
// the error says why.
func TestSeparatorInValueIsRefused(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	e.rdb.Set(ctx, "session:a:b:1", "subject a:b", 0)
	e.rdb.Set(ctx, "session:a:b:c:1", "someone else", 0)
	_, err := e.client.Erase(ctx, connector.Request{ID: "r", Identifiers: ids("a:b", "x@y")})
	if connector.KindOf(err) != connector.KindRejected || !strings.Contains(err.Error(), `"userId"`) || strings.Contains(err.Error(), "a:b") {
		t.Errorf("%v", err)
	}
	if n := exists(t, e.rdb, "session:a:b:1", "session:a:b:c:1"); n != 2 {
		t.Errorf("keys erased: %d of 2 left", n)
	}
}
