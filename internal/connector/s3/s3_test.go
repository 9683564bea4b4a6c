package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/s3"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

var (
	serverOnce sync.Once
	server     *teststore.S3
	serverErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		_ = server.Close()
	}
	os.Exit(code)
}

// shared is the package's versitygw server, started on first use.
func shared(t *testing.T) *teststore.S3 {
	t.Helper()
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		server, serverErr = teststore.StartS3(ctx)
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return server
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func obj(bucket, key string, action privacyv1alpha1.ObjectAction, reason string) privacyv1alpha1.ObjectMapping {
	return privacyv1alpha1.ObjectMapping{Bucket: bucket, Key: key, Action: action, RetainReason: reason}
}

func del(bucket, key string) privacyv1alpha1.ObjectMapping {
	return obj(bucket, key, privacyv1alpha1.ObjectActionDelete, "")
}

func spec(srv *teststore.S3, objects ...privacyv1alpha1.ObjectMapping) *privacyv1alpha1.DataStoreSpec {
	return &privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypeS3,
		Connection: privacyv1alpha1.Connection{
			URL: srv.Endpoint(), AllowInsecureHTTP: true,
			Timeout: &metav1.Duration{Duration: 10 * time.Second},
		},
		Objects: objects,
	}
}

func newClient(t *testing.T, srv *teststore.S3, objects ...privacyv1alpha1.ObjectMapping) connector.Client {
	t.Helper()
	p, err := connector.ProviderFor(privacyv1alpha1.StoreTypeS3)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.NewClient(context.Background(), connector.Config{Name: "test", Spec: spec(srv, objects...), Secret: []byte(srv.Secret())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func root(t *testing.T, srv *teststore.S3) *minio.Client {
	t.Helper()
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func bucket(t *testing.T, srv *teststore.S3, versioned, locked bool) string {
	t.Helper()
	b, err := srv.CreateBucket(ctxT(t), "t", versioned, locked)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, mc *minio.Client, bucket, key, body string, opts ...minio.PutObjectOptions) string {
	t.Helper()
	o := minio.PutObjectOptions{ContentType: "text/plain"}
	if len(opts) > 0 {
		o = opts[0]
	}
	info, err := mc.PutObject(context.Background(), bucket, key, bytes.NewReader([]byte(body)), int64(len(body)), o)
	if err != nil {
		t.Fatalf("put object: %v", err)
	}
	return info.VersionID
}

// versions lists every version and delete marker of the bucket as "key" entries, sorted.
func versions(t *testing.T, mc *minio.Client, bucket string) []string {
	t.Helper()
	var out []string
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatalf("list: %v", o.Err)
		}
		out = append(out, o.Key)
	}
	slices.Sort(out)
	return out
}

func subject(values map[string]string) connector.Request {
	return connector.Request{ID: "r1", Identifiers: values}
}

func mustErase(t *testing.T, c connector.Client, req connector.Request) *connector.EraseResult {
	t.Helper()
	res, err := c.Erase(ctxT(t), req)
	if err != nil {
		t.Fatalf("erase: %v", err)
	}
	return res
}

func mustVerify(t *testing.T, c connector.Client, req connector.Request) *connector.VerifyResult {
	t.Helper()
	res, err := c.Verify(ctxT(t), req)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return res
}

func TestEraseExactKeyAndPrefixLeavesBystanders(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	for _, k := range []string{"users/42/a.json", "users/42/b/c.txt", "users/421/a.json", "users/4/x", "users/42.json", "avatars/42.png", "avatars/421.png", "avatars/42.png.bak"} {
		put(t, mc, b, k, "data of "+k)
	}
	c := newClient(t, srv, del(b, "users/{userId}/"), del(b, "avatars/{userId}.png"))
	req := subject(map[string]string{"userId": "42"})

	dry, err := c.Erase(ctxT(t), connector.Request{ID: "r", Identifiers: req.Identifiers, DryRun: true})
	if err != nil || dry.Erased != 3 {
		t.Fatalf("dry run = %+v, %v; want 3 to erase", dry, err)
	}
	if got := len(versions(t, mc, b)); got != 8 {
		t.Fatalf("dry run changed the bucket: %d objects left, want 8", got)
	}
	before := mustVerify(t, c, req)
	if before.Remaining != 3 {
		t.Fatalf("verify before erase: remaining %d, want 3", before.Remaining)
	}
	if res := mustErase(t, c, req); res.Erased != 3 || res.Retained != 0 {
		t.Fatalf("erase = %+v, want 3 erased", res)
	}
	want := []string{"avatars/42.png.bak", "avatars/421.png", "users/4/x", "users/42.json", "users/421/a.json"}
	if got := versions(t, mc, b); !slices.Equal(got, want) {
		t.Fatalf("left %q, want %q", got, want)
	}
	if v := mustVerify(t, c, req); v.Remaining != 0 || v.Retained != 0 {
		t.Fatalf("verify after erase = %+v", v)
	}
	if again := mustErase(t, c, req); again.Erased != 0 {
		t.Fatalf("second erase erased %d, want 0 (idempotent)", again.Erased)
	}
}

func TestErasePagesThroughMoreThanAThousandObjects(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	const n = 1203
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := "x"
			_, err := mc.PutObject(context.Background(), b, fmt.Sprintf("users/7/f%05d", i), bytes.NewReader([]byte(body)), 1, minio.PutObjectOptions{})
			if err != nil {
				t.Errorf("put: %v", err)
			}
		}()
	}
	wg.Wait()
	put(t, mc, b, "users/70/keep", "bystander")
	c := newClient(t, srv, del(b, "users/{userId}/"))
	req := subject(map[string]string{"userId": "7"})
	if v := mustVerify(t, c, req); v.Remaining != n {
		t.Fatalf("verify before = %d remaining, want %d", v.Remaining, n)
	}
	if res := mustErase(t, c, req); res.Erased != n {
		t.Fatalf("erased %d, want %d", res.Erased, n)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"users/70/keep"}) {
		t.Fatalf("left %d objects (first %q), want only the bystander", len(got), got[:min(3, len(got))])
	}
}

func TestVersionedBucketLosesEveryVersion(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, true, false)
	for i := range 3 {
		put(t, mc, b, "users/42/profile.json", fmt.Sprintf("version %d", i))
	}
	put(t, mc, b, "users/42/old.txt", "gone but kept")
	// A plain delete on a versioned bucket only adds a delete marker: the data stays.
	if err := mc.RemoveObject(context.Background(), b, "users/42/old.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	put(t, mc, b, "users/43/profile.json", "bystander")
	put(t, mc, b, "users/43/profile.json", "bystander v2")
	c := newClient(t, srv, del(b, "users/{userId}/"))
	req := subject(map[string]string{"userId": "42"})
	// 3 versions + 1 version + 1 delete marker.
	if v := mustVerify(t, c, req); v.Remaining != 5 {
		t.Fatalf("verify before: remaining %d, want 5 (versions and delete marker)", v.Remaining)
	}
	if res := mustErase(t, c, req); res.Erased != 5 {
		t.Fatalf("erased %d, want 5", res.Erased)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"users/43/profile.json", "users/43/profile.json"}) {
		t.Fatalf("left %q, want the bystander's two versions", got)
	}
	if v := mustVerify(t, c, req); v.Remaining != 0 {
		t.Fatalf("verify after: remaining %d", v.Remaining)
	}
}

func TestRetainedMappingWinsAndIsReported(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	put(t, mc, b, "users/42/invoices/2025.pdf", "invoice")
	put(t, mc, b, "users/42/avatar.png", "avatar")
	c := newClient(t, srv,
		del(b, "users/{userId}/"),
		obj(b, "users/{userId}/invoices/", privacyv1alpha1.ObjectActionRetain, "tax law: 10 years"))
	req := subject(map[string]string{"userId": "42"})
	res := mustErase(t, c, req)
	if res.Erased != 1 || res.Retained != 1 || len(res.RetainedLocations) != 1 || res.RetainedLocations[0].Reason != "tax law: 10 years" {
		t.Fatalf("erase = %+v", res)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"users/42/invoices/2025.pdf"}) {
		t.Fatalf("left %q", got)
	}
	v := mustVerify(t, c, req)
	if v.Remaining != 0 || v.Retained != 1 {
		t.Fatalf("verify = %+v", v)
	}
}

func TestDerivedValuesEachErased(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	for _, k := range []string{"c/c-1/a", "c/c-2/a", "c/c-3/a"} {
		put(t, mc, b, k, "x")
	}
	c := newClient(t, srv, del(b, "c/{customerId}/"))
	req := connector.Request{ID: "r", Identifiers: connector.Identifiers{"email": "a@example.com"}, Values: connector.Values{"customerId": {"c-1", "c-2"}}}
	if res := mustErase(t, c, req); res.Erased != 2 {
		t.Fatalf("erased %d, want 2", res.Erased)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"c/c-3/a"}) {
		t.Fatalf("left %q", got)
	}
}

// Keys name the normalised form of an email or phone identifier, as Redis key patterns do.
func TestEmailAndPhoneKeysUseTheNormalisedForm(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	put(t, mc, b, "mail/customer-1@example.com/inbox.eml", "x")
	put(t, mc, b, "sms/+15550100001.log", "x")
	put(t, mc, b, "mail/customer-2@example.com/inbox.eml", "bystander")
	c := newClient(t, srv, del(b, "mail/{email}/"), del(b, "sms/{phone}.log"))
	req := subject(map[string]string{"email": " Customer-1@Example.com", "phone": "+1 (555) 010-0001"})
	if res := mustErase(t, c, req); res.Erased != 2 {
		t.Fatalf("erased %d, want 2", res.Erased)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"mail/customer-2@example.com/inbox.eml"}) {
		t.Fatalf("left %q", got)
	}
}
