package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/redis"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	teststore.CloseShared()
	os.Exit(code)
}

// dbs hands out the shared server's logical databases 1 to 15, one per test at a time; the fuzz
// tests use database 0.
var dbs = make(chan int, 15)

func init() {
	for i := 1; i <= 15; i++ {
		dbs <- i
	}
}

type env struct {
	rdb    *goredis.Client
	db     int
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

// setup takes an empty logical database of server (the shared one if nil) and a client for it
// with the mapping km (keys() if nil).
func setup(t *testing.T, server *teststore.Redis, km []privacyv1alpha1.KeyMapping) *env {
	t.Helper()
	if server == nil {
		server = teststore.SharedRedis(t)
	}
	if km == nil {
		km = keys()
	}
	db := <-dbs
	t.Cleanup(func() { dbs <- db })
	u := server.URL(db)
	rdb := raw(t, u)
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return &env{rdb: rdb, db: db, url: u, client: newClient(t, u, km)}
}

func raw(t *testing.T, u string) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func spec(km []privacyv1alpha1.KeyMapping) *privacyv1alpha1.DataStoreSpec {
	return &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeRedis, Keys: km,
		Connection: privacyv1alpha1.Connection{Timeout: &metav1.Duration{Duration: 5 * time.Second}}}
}

func newClient(t *testing.T, u string, km []privacyv1alpha1.KeyMapping) connector.Client {
	t.Helper()
	// The trailing newline is what `kubectl create secret --from-file` often leaves.
	c, err := redis.NewProvider().NewClient(context.Background(), connector.Config{Name: "test", Secret: []byte(u + "\n"), Spec: spec(km)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// seed writes one key of every type under the person's session pattern, a cart, a profile and a
// consent record, and returns the number of deletable keys.
func seed(t *testing.T, rdb *goredis.Client, userID, email string) int {
	t.Helper()
	ctx := context.Background()
	p := "session:" + userID + ":"
	for _, err := range []error{
		rdb.Set(ctx, p+"s", "v", 0).Err(),
		rdb.HSet(ctx, p+"h", "f", "v").Err(),
		rdb.RPush(ctx, p+"l", "a", "b").Err(),
		rdb.SAdd(ctx, p+"set", "m2", "m1").Err(),
		rdb.ZAdd(ctx, p+"z", goredis.Z{Score: 2, Member: "second"}, goredis.Z{Score: 1, Member: "first"}).Err(),
		rdb.XAdd(ctx, &goredis.XAddArgs{Stream: p + "x", ID: "1-1", Values: map[string]any{"k": "v"}}).Err(),
		rdb.Set(ctx, "cart:"+userID, "c", 0).Err(),
		rdb.Set(ctx, profileKey(email), "p", 0).Err(),
		rdb.Set(ctx, "consent:"+userID, "yes", 0).Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return 8
}

// profileKey is the key an application that normalises emails, as patterns expect, writes.
func profileKey(email string) string {
	return "profile:" + normalize.Normalizer{}.Key(normalize.Email, email) + ":main"
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

func dbsize(t *testing.T, rdb *goredis.Client) int64 {
	t.Helper()
	n, err := rdb.DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func kindOf(t *testing.T, err error, want connector.ErrorKind) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", want)
	}
	var ce *connector.Error
	if !errors.As(err, &ce) || ce.Kind != want {
		t.Fatalf("error %v, want kind %s", err, want)
	}
}

func TestEraseVerifyCollectRetain(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	want := seed(t, e.rdb, "a", "a@x.org")
	seed(t, e.rdb, "ab", "a@x.org.uk")
	seed(t, e.rdb, "a*", "b@x.org")
	total := dbsize(t, e.rdb)
	subject := connector.Request{ID: "r1", Identifiers: ids("a", "a@x.org")}

	if res, err := e.client.Check(ctx); err != nil || len(res.Warnings) != 0 {
		t.Fatalf("check %+v %v", res, err)
	}
	col, err := e.client.Collect(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]connector.Record{}
	for _, r := range col.Records {
		byKey[r.Key] = r
	}
	if len(col.Records) != want+1 || len(byKey) != want+1 {
		t.Fatalf("collected %d records, want %d: %v", len(col.Records), want+1, byKey)
	}
	for k, wantData := range map[string]string{
		"session:a:s":          `map[type:string value:v]`,
		"session:a:h":          `map[type:hash value:map[f:v]]`,
		"session:a:l":          `map[type:list value:[a b]]`,
		"session:a:set":        `map[type:set value:[m1 m2]]`,
		"session:a:z":          `map[type:zset value:[map[member:first score:1] map[member:second score:2]]]`,
		"session:a:x":          `map[type:stream value:[map[id:1-1 values:map[k:v]]]]`,
		"cart:a":               `map[type:string value:c]`,
		"profile:a@x.org:main": `map[type:string value:p]`,
		"consent:a":            `map[type:string value:yes]`,
	} {
		r, ok := byKey[k]
		if !ok {
			t.Errorf("%s not collected", k)
			continue
		}
		if got := fmt.Sprint(r.Data); got != wantData {
			t.Errorf("%s: %s, want %s", k, got, wantData)
		}
	}
	if byKey["session:a:s"].Location != "session:{userId}:*" || byKey["consent:a"].Location != "consent:{userId}" {
		t.Errorf("locations %q %q", byKey["session:a:s"].Location, byKey["consent:a"].Location)
	}

	dry, err := e.client.Erase(ctx, connector.Request{ID: "r1", Identifiers: subject.Identifiers, DryRun: true})
	if err != nil || dry.Erased != int64(want) || dry.Retained != 1 {
		t.Fatalf("dry run %+v %v", dry, err)
	}
	if n := dbsize(t, e.rdb); n != total {
		t.Fatalf("dry run changed the database: %d keys, had %d", n, total)
	}
	v, err := e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != int64(want) || v.Retained != 1 || len(v.RemainingLocations) != 3 {
		t.Fatalf("verify before erase %+v %v", v, err)
	}
	res, err := e.client.Erase(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if res.Erased != int64(want) || res.Retained != 1 || len(res.RetainedLocations) != 1 ||
		res.RetainedLocations[0] != (connector.LocationCount{Location: "consent:{userId}", Records: 1, Reason: "proof of consent"}) {
		t.Errorf("erase %+v", res)
	}
	if n := dbsize(t, e.rdb); n != total-int64(want) {
		t.Errorf("%d keys left, want %d", n, total-int64(want))
	}
	again, err := e.client.Erase(ctx, subject)
	if err != nil || again.Erased != 0 || again.Retained != 1 {
		t.Errorf("second erase %+v %v", again, err)
	}
	v, err = e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 0 || v.Retained != 1 || v.RetainedLocations[0].Reason != "proof of consent" {
		t.Errorf("verify %+v %v", v, err)
	}
	if n := exists(t, e.rdb, "consent:a"); n != 1 {
		t.Error("retained key deleted")
	}
	// Bystanders: "ab" and the literal "a*" are other people.
	for _, u := range []string{"ab", "a*"} {
		if n := exists(t, e.rdb, "session:"+u+":s", "session:"+u+":h", "session:"+u+":l", "session:"+u+":set",
			"session:"+u+":z", "session:"+u+":x", "cart:"+u, "consent:"+u); n != 8 {
			t.Errorf("bystander %q lost keys: %d of 8 left", u, n)
		}
	}
	if n := exists(t, e.rdb, "profile:a@x.org.uk:main", "profile:b@x.org:main"); n != 2 {
		t.Error("bystander profile deleted")
	}

	// Data that comes back is found, under its pattern.
	e.rdb.HSet(ctx, "session:a:restored", "f", "v")
	v, err = e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 1 || len(v.RemainingLocations) != 1 || v.RemainingLocations[0] != (connector.LocationCount{Location: "session:{userId}:*", Records: 1}) {
		t.Errorf("verify after restore %+v %v", v, err)
	}
}

// A subject without an email is erased by the patterns it has identifiers for; the email pattern
// does not apply rather than failing or matching "profile::*".
func TestMissingIdentifierSkipsPattern(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	seed(t, e.rdb, "u1", "")
	e.rdb.Set(ctx, "profile:x@y:main", "p", 0)
	for i, subject := range []connector.Identifiers{{"userId": "u1", "email": ""}, {"userId": "u1"}} {
		res, err := e.client.Erase(ctx, connector.Request{ID: "r", Identifiers: subject})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{7, 0}[i]; res.Erased != want || res.Retained != 1 {
			t.Errorf("erase %d: %+v, want %d erased", i, res, want)
		}
	}
	if n := exists(t, e.rdb, "profile::main", "profile:x@y:main"); n != 2 {
		t.Errorf("profiles deleted: %d of 2 left", n)
	}
	res, err := e.client.Erase(ctx, connector.Request{ID: "r", Identifiers: connector.Identifiers{"phone": "123"}})
	if err != nil || res.Erased != 0 || res.Retained != 0 {
		t.Errorf("subject without mapped identifiers: %+v %v", res, err)
	}
}

// A key that a retain and a delete pattern both match is kept: the legal hold wins.
func TestRetainWinsOverDelete(t *testing.T) {
	e := setup(t, nil, []privacyv1alpha1.KeyMapping{
		{Pattern: "user:{userId}:*", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "user:{userId}:invoices:*", Action: privacyv1alpha1.KeyActionRetain, RetainReason: "tax law"},
		{Pattern: "user:{userId}:contract", Action: privacyv1alpha1.KeyActionRetain, RetainReason: "contract"},
	})
	ctx := context.Background()
	for _, k := range []string{"user:7:name", "user:7:prefs", "user:7:invoices:1", "user:7:invoices:2", "user:7:contract"} {
		e.rdb.Set(ctx, k, "v", 0)
	}
	req := connector.Request{ID: "r", Identifiers: connector.Identifiers{"userId": "7"}}
	res, err := e.client.Erase(ctx, req)
	if err != nil || res.Erased != 2 || res.Retained != 3 || len(res.RetainedLocations) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := exists(t, e.rdb, "user:7:invoices:1", "user:7:invoices:2", "user:7:contract"); n != 3 {
		t.Errorf("retained keys deleted: %d of 3 left", n)
	}
	v, err := e.client.Verify(ctx, req)
	if err != nil || v.Remaining != 0 || v.Retained != 3 {
		t.Errorf("verify %+v %v", v, err)
	}
	req.Deep = true
	if v, err := e.client.Verify(ctx, req); err != nil || v.Remaining != 0 || v.Retained != 3 {
		t.Errorf("deep verify counts retained keys: %+v %v", v, err)
	}
}

func TestDeepVerify(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	seed(t, e.rdb, "u-4711", "a@x.org")
	for _, k := range []string{
		"legacy/a@x.org/prefs", // the email, unmapped
		"idx:u-4711",           // the user id, unmapped
		"legacy/b@x.org/prefs", // someone else
		"session:u-47111:s",    // someone else's session; holds the id, so it is a lead
		"short:7",              // a short id as a whole segment
		"short:17", "short:7a", // not the short id
		"other:consent:u-4711x", // holds the id
	} {
		e.rdb.Set(ctx, k, "v", 0)
	}
	e.rdb.Set(ctx, "unrelated", "a@x.org", 0) // values are not searched
	subject := connector.Request{ID: "r", Identifiers: connector.Identifiers{"userId": "u-4711", "email": "a@x.org", "code": "7"}}
	if _, err := e.client.Erase(ctx, subject); err != nil {
		t.Fatal(err)
	}
	v, err := e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 0 {
		t.Fatalf("shallow %+v %v", v, err)
	}
	subject.Deep = true
	v, err = e.client.Verify(ctx, subject)
	if err != nil || v.Remaining != 5 || len(v.RemainingLocations) != 1 || v.RemainingLocations[0] != (connector.LocationCount{Location: redis.DeepLocation, Records: 5}) || v.Retained != 1 {
		t.Errorf("deep %+v %v", v, err)
	}

	// Past its limit, a deep scan fails rather than answer for part of the database.
	defer redis.SetMaxDeepScanKeys(5)()
	_, err = e.client.Verify(ctx, subject)
	kindOf(t, err, connector.KindRejected)
	if !strings.Contains(err.Error(), "limit") {
		t.Errorf("%v", err)
	}
	subject.Deep = false
	if _, err := e.client.Verify(ctx, subject); err != nil {
		t.Errorf("shallow verify is not limited: %v", err)
	}
}

// hostile are identifier values that mean something to a glob, a shell, SQL or JSON.
var hostile = []string{`'`, `"`, `%`, `_`, `*`, `?`, `[`, `]`, `[a-z]`, `[^a]`, `\`, `\*`, `^`, `-`, `a-z`, "a\x00b", "\x00",
	strings.Repeat("x", 10<<10), "ünïcødé✓", "a b", "{userId}", "\xff\xfe", "'; FLUSHALL; --", "\r\nFLUSHALL\r\n"}

// Hostile identifier values erase the subject's own keys and nothing else.
func TestHostileIdentifiers(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	for _, v := range hostile {
		seed(t, e.rdb, v, v+"@h")
	}
	// Bystanders whose keys the unescaped patterns would match.
	bystanders := []string{"x", "ab", "zz", "a", "aXb", "\\x", "a[", "b", "m", "%x", "\x01"}
	for _, b := range bystanders {
		seed(t, e.rdb, "by-"+b, "by-"+b+"@h")
		e.rdb.Set(ctx, "session:"+b+":s", "v", 0)
		e.rdb.Set(ctx, "cart:"+b, "v", 0)
	}
	for _, v := range hostile {
		label := v
		if len(label) > 12 {
			label = label[:12]
		}
		t.Run(fmt.Sprintf("%q", label), func(t *testing.T) {
			subject := connector.Request{ID: "r", Identifiers: ids(v, v+"@h")}
			col, err := e.client.Collect(ctx, subject)
			if err != nil || len(col.Records) != 9 {
				t.Fatalf("collected %d records, want 9: %v", len(col.Records), err)
			}
			before := dbsize(t, e.rdb)
			res, err := e.client.Erase(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			after := dbsize(t, e.rdb)
			if res.Erased != 8 || before-after != 8 {
				t.Errorf("erased %d (keys %d -> %d), want exactly the subject's 8", res.Erased, before, after)
			}
			if n := exists(t, e.rdb, "session:"+v+":s", "cart:"+v, profileKey(v+"@h")); n != 0 {
				t.Errorf("%d of the subject's keys left", n)
			}
			if vr, err := e.client.Verify(ctx, subject); err != nil || vr.Remaining != 0 || vr.Retained != 1 {
				t.Errorf("verify %+v %v", vr, err)
			}
			// Short punctuation values ("'", "*") also stand as segments of other subjects'
			// keys, so a deep scan may report leads here; it must not fail.
			subject.Deep = true
			if vr, err := e.client.Verify(ctx, subject); err != nil || vr.Retained != 1 {
				t.Errorf("deep verify %+v %v", vr, err)
			}
		})
	}
	for _, b := range bystanders {
		if n := exists(t, e.rdb, "session:"+b+":s", "cart:"+b, "session:by-"+b+":z", profileKey("by-"+b+"@h")); n != 4 {
			t.Errorf("bystander %q lost keys: %d of 4 left", b, n)
		}
	}
}

// SCAN crosses a keyspace of many keys and the subject's keys alone go.
func TestManyKeys(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	pipe := e.rdb.Pipeline()
	for i := 0; i < 20000; i++ {
		pipe.Set(ctx, fmt.Sprintf("session:%d:%d", 1000+i%500, i), "v", 0)
	}
	for i := 0; i < 1200; i++ {
		pipe.Set(ctx, fmt.Sprintf("session:7:%d", i), "v", 0) // more than one UNLINK batch
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	req := connector.Request{ID: "r", Identifiers: connector.Identifiers{"userId": "7"}}
	if v, err := e.client.Verify(ctx, req); err != nil || v.Remaining != 1200 {
		t.Fatalf("verify before %+v %v", v, err)
	}
	res, err := e.client.Erase(ctx, req)
	if err != nil || res.Erased != 1200 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := dbsize(t, e.rdb); n != 20000 {
		t.Errorf("%d keys left, want the 20000 bystander keys", n)
	}
	if v, err := e.client.Verify(ctx, req); err != nil || v.Remaining != 0 {
		t.Errorf("verify after %+v %v", v, err)
	}
}

// One client serves many requests at once, each erasing its own subject's keys.
func TestConcurrentSubjects(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	const n = 24
	for i := 0; i < n; i++ {
		seed(t, e.rdb, fmt.Sprint("c", i), fmt.Sprint("c", i, "@x.org"))
	}
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			req := connector.Request{ID: fmt.Sprint(i), Identifiers: ids(fmt.Sprint("c", i), fmt.Sprint("c", i, "@x.org"))}
			if _, err := e.client.Collect(ctx, req); err != nil {
				errs <- err
				return
			}
			res, err := e.client.Erase(ctx, req)
			if err == nil && (res.Erased != 8 || res.Retained != 1) {
				err = fmt.Errorf("subject %d: %+v", i, res)
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := dbsize(t, e.rdb); got != n {
		t.Errorf("%d keys left, want the %d retained", got, n)
	}
}

// A value holding the pattern's separator would match other people's keys: nothing is erased and
// the error names the identifier, not its value.
func TestSeparatorInValueIsRefused(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	e.rdb.Set(ctx, "session:a:b:1", "subject a:b", 0)
	e.rdb.Set(ctx, "session:a:b:c:1", "someone else", 0)
	e.rdb.Set(ctx, "cart:a:b", "subject a:b", 0)
	_, err := e.client.Erase(ctx, connector.Request{ID: "r", Identifiers: ids("a:b", "x@y")})
	kindOf(t, err, connector.KindRejected)
	if !strings.Contains(err.Error(), `"userId"`) || strings.Contains(err.Error(), "a:b") {
		t.Errorf("%v", err)
	}
	if n := dbsize(t, e.rdb); n != 3 {
		t.Errorf("keys erased: %d of 3 left", n)
	}
}

func TestWrongPassword(t *testing.T) {
	ctx := context.Background()
	server := teststore.SharedRedis(t)
	u, err := url.Parse(server.URL(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []*url.Userinfo{url.UserPassword("", "wrong-secret-1"), url.UserPassword("nobody", "wrong-secret-1"), nil} {
		u.User = user
		c := newClient(t, u.String(), keys())
		_, err := c.Check(ctx)
		kindOf(t, err, connector.KindAuth)
		if !connector.IsTransient(err) || strings.Contains(err.Error(), "wrong-secret-1") {
			t.Errorf("%v", err)
		}
		_, err = c.Erase(ctx, connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")})
		kindOf(t, err, connector.KindAuth)
	}
}

// An outage mid-request is a transient error; the same client erases once the server is back.
func TestOutage(t *testing.T) {
	ctx := context.Background()
	server, err := teststore.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	e := setup(t, server, nil)
	req := connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")}
	seed(t, e.rdb, "a", "a@x.org")
	if _, err := e.client.Check(ctx); err != nil {
		t.Fatal(err) // the pool now holds a connection that the stop breaks
	}
	if err := server.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"check":   func() error { _, err := e.client.Check(ctx); return err },
		"erase":   func() error { _, err := e.client.Erase(ctx, req); return err },
		"verify":  func() error { _, err := e.client.Verify(ctx, req); return err },
		"collect": func() error { _, err := e.client.Collect(ctx, req); return err },
	} {
		err := op()
		if connector.KindOf(err) != connector.KindUnavailable || !connector.IsTransient(err) {
			t.Errorf("%s with the server down: %v", name, err)
		}
		var ce *connector.Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: not a connector error: %v", name, err)
		}
	}
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted server is empty (no persistence): seed again.
	want := seed(t, e.rdb, "a", "a@x.org")
	res, err := e.client.Erase(ctx, req)
	if err != nil || res.Erased != int64(want) {
		t.Fatalf("after restart: %+v %v", res, err)
	}
	if v, err := e.client.Verify(ctx, req); err != nil || v.Remaining != 0 {
		t.Errorf("verify after restart %+v %v", v, err)
	}
}

// A server that goes away while an erasure waits on it fails that erasure as transient; the next
// attempt completes.
func TestStopMidErase(t *testing.T) {
	ctx := context.Background()
	server, err := teststore.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	e := setup(t, server, nil)
	req := connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")}
	seed(t, e.rdb, "a", "a@x.org")
	// CLIENT PAUSE WRITE holds UNLINK back, after SCAN found the keys.
	if err := e.rdb.Do(ctx, "CLIENT", "PAUSE", 60000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.client.Erase(ctx, req)
		done <- err
	}()
	for i := 0; ; i++ {
		info, err := e.rdb.Info(ctx, "clients").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "blocked_clients:1") {
			break
		}
		if i == 200 {
			t.Fatal("the erasure never reached UNLINK")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := server.Stop(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	kindOf(t, err, connector.KindUnavailable)
	if !connector.IsTransient(err) {
		t.Errorf("%v", err)
	}
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	want := seed(t, e.rdb, "a", "a@x.org") // the restarted server is empty
	if res, err := e.client.Erase(ctx, req); err != nil || res.Erased != int64(want) {
		t.Fatalf("after restart: %+v %v", res, err)
	}
	if n := dbsize(t, e.rdb); n != 1 {
		t.Errorf("%d keys left, want the retained one", n)
	}
}

// The caller's deadline bounds a command the server holds back, although the spec's timeout is
// longer: CLIENT PAUSE WRITE lets SCAN through and blocks UNLINK.
func TestContextDeadline(t *testing.T) {
	ctx := context.Background()
	server, err := teststore.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	e := setup(t, server, nil)
	req := connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")}
	seed(t, e.rdb, "a", "a@x.org")
	if err := e.rdb.Do(ctx, "CLIENT", "PAUSE", 2000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = e.client.Erase(short, req)
	kindOf(t, err, connector.KindUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("not the caller's deadline: %v", err)
	}
	res, err := e.client.Erase(ctx, req) // waits out the pause
	if err != nil || res.Erased != 8 {
		t.Errorf("after the pause: %+v %v", res, err)
	}
}

// aclUser creates a user on the shared server and returns a URL for it on database db.
func aclUser(t *testing.T, db int, rules ...string) string {
	t.Helper()
	server := teststore.SharedRedis(t)
	admin := raw(t, server.URL(0))
	name := fmt.Sprintf("dsr-%s-%d", strings.ToLower(t.Name()), time.Now().UnixNano())
	name = strings.NewReplacer("/", "-", "_", "-").Replace(name)
	args := []any{"ACL", "SETUSER", name, "reset", "on", ">pw-" + name}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := admin.Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Do(context.Background(), "ACL", "DELUSER", name).Err() })
	u := url.URL{Scheme: "redis", User: url.UserPassword(name, "pw-"+name), Host: fmt.Sprintf("%s:%d", server.Host, server.Port), Path: fmt.Sprint("/", db)}
	return u.String()
}

// A least-privilege user works; a user without a command erasure needs fails Check with
// KindAuth naming the command and pattern, before any erasure.
func TestACLPermissions(t *testing.T) {
	ctx := context.Background()
	e := setup(t, nil, nil)
	dbn := e.db
	seed(t, e.rdb, "a", "a@x.org")
	req := connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")}
	base := []string{"resetchannels", "-@all", "+ping", "+select", "+exists", "+scan", "+type"}
	reads := []string{"+get", "+hgetall", "+lrange", "+smembers", "+zrange", "+xrange"}

	t.Run("no UNLINK", func(t *testing.T) {
		c := newClient(t, aclUser(t, dbn, append(append(base, reads...), "~*", "+info")...), keys())
		_, err := c.Check(ctx)
		kindOf(t, err, connector.KindAuth)
		for _, want := range []string{"UNLINK", `"session:{userId}:*"`, `"cart:{userId}"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q not in %v", want, err)
			}
		}
		if strings.Contains(err.Error(), `"consent:{userId}"`) {
			t.Errorf("a retained pattern needs no UNLINK: %v", err)
		}
		_, err = c.Erase(ctx, req)
		kindOf(t, err, connector.KindAuth)
		if n := exists(t, e.rdb, "session:a:s", "cart:a"); n != 2 {
			t.Errorf("keys deleted without UNLINK: %d of 2 left", n)
		}
	})
	t.Run("keys outside the user's key patterns", func(t *testing.T) {
		c := newClient(t, aclUser(t, dbn, append(append(base, reads...), "+unlink", "+info", "~session:*", "~consent:*", "~profile:*")...), keys())
		_, err := c.Check(ctx)
		kindOf(t, err, connector.KindAuth)
		if !strings.Contains(err.Error(), `"cart:{userId}"`) || strings.Contains(err.Error(), `"session:{userId}:*"`) {
			t.Errorf("%v", err)
		}
	})
	t.Run("least privilege without INFO and reads", func(t *testing.T) {
		c := newClient(t, aclUser(t, dbn, append(base, "+unlink", "~*")...), keys())
		res, err := c.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(res.Warnings, "\n")
		if !strings.Contains(joined, "INFO") || !strings.Contains(joined, "HGETALL") || len(res.Warnings) != 5 {
			t.Errorf("warnings %q", res.Warnings)
		}
		_, err = c.Collect(ctx, req)
		kindOf(t, err, connector.KindAuth)
		v, err := c.Verify(ctx, req)
		if err != nil || v.Remaining != 8 {
			t.Fatalf("verify %+v %v", v, err)
		}
		res2, err := c.Erase(ctx, req)
		if err != nil || res2.Erased != 8 || res2.Retained != 1 {
			t.Errorf("erase %+v %v", res2, err)
		}
	})
}

// startCluster starts a cluster-enabled redis-server on a unix socket (no slots assigned) and
// returns its URL. teststore has no cluster mode; this is the real server all the same.
func startCluster(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	dir, err := os.MkdirTemp("", "rc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// TCP on loopback: the connector refuses unix sockets.
	port, busPort := freePort(t), freePort(t)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "", "--appendonly", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-port", strconv.Itoa(busPort), "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	u := fmt.Sprintf("redis://127.0.0.1:%d", port)
	probe := raw(t, u)
	for i := 0; ; i++ {
		if probe.Ping(context.Background()).Err() == nil {
			return u
		}
		if i == 100 {
			t.Fatal("cluster-enabled redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterModeRefused(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, startCluster(t), keys())
	_, err := c.Check(ctx)
	kindOf(t, err, connector.KindMapping)
	if !strings.Contains(err.Error(), "Cluster") {
		t.Errorf("%v", err)
	}
	for _, op := range []func() error{
		func() error {
			_, err := c.Erase(ctx, connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")})
			return err
		},
		func() error {
			_, err := c.Verify(ctx, connector.Request{ID: "r", Identifiers: ids("a", "a@x.org")})
			return err
		},
	} {
		kindOf(t, op(), connector.KindMapping)
	}
}

func TestCheckWarnings(t *testing.T) {
	e := setup(t, nil, []privacyv1alpha1.KeyMapping{
		{Pattern: "user.{email}.*", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "pair:{a}{b}", Action: privacyv1alpha1.KeyActionDelete},
		{Pattern: "ok:{userId}:*", Action: privacyv1alpha1.KeyActionDelete},
	})
	res, err := e.client.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], `"."`) || !strings.Contains(res.Warnings[1], "adjacent") {
		t.Errorf("warnings %q", res.Warnings)
	}
	if dbsize(t, e.rdb) != 0 {
		t.Error("Check left keys behind")
	}
}

// Values that are not UTF-8 are exported in base64 rather than mangled by JSON.
func TestCollectBinary(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	e.rdb.Set(ctx, "session:b:bin", "\xff\x00ok", 0)
	e.rdb.HSet(ctx, "session:b:h", "f\xfe", "v")
	e.rdb.Set(ctx, "session:b:text", "ok ✓", 0)
	col, err := e.client.Collect(ctx, connector.Request{ID: "r", Identifiers: connector.Identifiers{"userId": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(col.Records, func(i, j int) bool { return col.Records[i].Key < col.Records[j].Key })
	got := fmt.Sprint(col.Records[0].Data, col.Records[1].Data, col.Records[2].Data)
	if want := "map[encoding:base64 type:string value:/wBvaw==] map[encoding:base64 type:hash value:map[Zv4=:dg==]] map[type:string value:ok ✓]"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestInvalidConfig(t *testing.T) {
	p := redis.NewProvider()
	for _, secret := range []string{"redis://:hunter2@[::1", "http://:hunter2@host:6379", "hunter2", ""} {
		_, err := p.NewClient(context.Background(), connector.Config{Secret: []byte(secret), Spec: spec(keys())})
		kindOf(t, err, connector.KindInvalid)
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the password is in the error: %v", err)
		}
	}
	// A database the server does not have.
	u := teststore.SharedRedis(t).URL(999)
	_, err := newClient(t, u, keys()).Check(context.Background())
	kindOf(t, err, connector.KindInvalid)
}

func TestValidateSpec(t *testing.T) {
	p := redis.NewProvider()
	del := privacyv1alpha1.KeyActionDelete
	for _, ok := range []string{"session:{userId}:*", "cart:{userId}", "{userId}", "a/{b.c}/{d_e-f}/x*", "ü:{userId}", "k:{userId}-*"} {
		if err := p.ValidateSpec(spec([]privacyv1alpha1.KeyMapping{{Pattern: ok, Action: del}})); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"session:*", "session:{userId}*", "a*{userId}:*", "x:{userId}:?", "x:{userId}:[a]*", "*",
		"x:{userId}:**", "x:{1d}", "x:{userId", "x:{user id}", "x {userId}", "x:{userId}\\*", "x:{userId}:\n", strings.Repeat("x", 510) + "{a}", ""} {
		err := p.ValidateSpec(spec([]privacyv1alpha1.KeyMapping{{Pattern: bad, Action: del}}))
		kindOf(t, err, connector.KindMapping)
	}
	for name, s := range map[string]*privacyv1alpha1.DataStoreSpec{
		"no keys":     spec(nil),
		"nil":         nil,
		"no reason":   spec([]privacyv1alpha1.KeyMapping{{Pattern: "a:{b}", Action: privacyv1alpha1.KeyActionRetain, RetainReason: " "}}),
		"bad action":  spec([]privacyv1alpha1.KeyMapping{{Pattern: "a:{b}", Action: "mask"}}),
		"twice":       spec([]privacyv1alpha1.KeyMapping{{Pattern: "a:{b}", Action: del}, {Pattern: "a:{b}", Action: del}}),
		"wrong type":  {Type: privacyv1alpha1.StoreTypePostgres, Keys: keys()},
		"tables, too": {Type: privacyv1alpha1.StoreTypeRedis, Keys: keys(), Tables: []privacyv1alpha1.TableMapping{{Name: "t"}}},
	} {
		err := p.ValidateSpec(s)
		if connector.KindOf(err) != connector.KindMapping || err == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := p.NewClient(context.Background(), connector.Config{Secret: []byte("redis://localhost:1"), Spec: spec([]privacyv1alpha1.KeyMapping{{Pattern: "x:*", Action: del}})}); connector.KindOf(err) != connector.KindMapping {
		t.Errorf("NewClient does not validate: %v", err)
	}
	if got, err := connector.ProviderFor(privacyv1alpha1.StoreTypeRedis); err != nil || got == nil {
		t.Errorf("not registered: %v", err)
	}
}
