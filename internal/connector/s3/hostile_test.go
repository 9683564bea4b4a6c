package s3_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// Values that would change the key's structure are refused, naming the identifier but not the
// value, and nothing is touched; values that are only unusual match exactly themselves.
func TestHostileValues(t *testing.T) {
	srv := shared(t)
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	long := strings.Repeat("é", 120) // 240 bytes: the longest path segment a posix backend stores is 255
	bystanders := []string{"users/42/a", "users/x/a", "users/%2F/a", "users/a%2Fb/a", "users/ü李/a", "users/ü/a", "users/_/a", "users/" + long + "/a", "users/" + long + "x/a"}
	for _, k := range bystanders {
		put(t, mc, b, k, "data")
	}
	c := newClient(t, srv, del(b, "users/{userId}/"))
	for _, v := range []string{"../", "..", ".", "x/..", "42/", "/", "a\x00b", "a\nb", "\xff"} {
		t.Run(fmt.Sprintf("refused %q", v), func(t *testing.T) {
			_, err := c.Erase(ctxT(t), subject(map[string]string{"userId": v}))
			var ce *connector.Error
			if !errors.As(err, &ce) || ce.Kind != connector.KindRejected {
				t.Fatalf("erase with %q: %v; want a Rejected error", v, err)
			}
			if strings.Contains(err.Error(), v) && v != "." && v != ".." && v != "/" {
				t.Errorf("the error holds the value: %v", err)
			}
			if !strings.Contains(connector.Summary(err), `"userId"`) {
				t.Errorf("summary does not name the identifier: %s", connector.Summary(err))
			}
		})
	}
	if got := versions(t, mc, b); !slices.Equal(got, sorted(bystanders)) {
		t.Fatalf("refused values changed the bucket: %q", got)
	}
	for _, tc := range []struct{ value, gone string }{
		{"%2F", "users/%2F/a"},
		{"ü李", "users/ü李/a"},
		{"_", "users/_/a"},
		{long, "users/" + long + "/a"},
		{strings.Repeat("k", 1024), ""}, // the key is longer than S3 allows: nothing can match
		{"*", ""},
	} {
		before := versions(t, mc, b)
		res, err := c.Erase(ctxT(t), subject(map[string]string{"userId": tc.value}))
		if err != nil {
			t.Fatalf("erase with a %d-byte value: %v", len(tc.value), err)
		}
		want := slices.DeleteFunc(slices.Clone(before), func(k string) bool { return k == tc.gone })
		if got := versions(t, mc, b); !slices.Equal(got, want) {
			t.Fatalf("erase with %q left %q, want %q", tc.value, got, want)
		}
		if wantN := int64(len(before) - len(want)); res.Erased != wantN {
			t.Fatalf("erase with %q erased %d, want %d", tc.value, res.Erased, wantN)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// A server that stops in the middle of an erasure makes Erase fail with an error that holds no
// identifier; a re-run after the restart finishes the job.
func TestServerStoppedMidErase(t *testing.T) {
	ctx := ctxT(t)
	srv, err := teststore.StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	mc := root(t, srv)
	b := bucket(t, srv, true, false)
	const n = 4000
	seed(t, mc, b, "users/u-4711/f", n)
	put(t, mc, b, "users/u-4712/keep", "bystander")
	c := newClient(t, srv, del(b, "users/{userId}/"))
	req := subject(map[string]string{"userId": "u-4711"})

	done := make(chan error, 1)
	go func() {
		_, err := c.Erase(ctx, req)
		done <- err
	}()
	// Stop the server as soon as the first batch is gone (keys are listed, and so deleted, in
	// order): a HEAD of the first key is cheap enough to notice it while batches remain.
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		_, err := mc.StatObject(context.Background(), b, "users/u-4711/f00000", minio.StatObjectOptions{})
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if err == nil {
		t.Fatal("erase succeeded although the server stopped in the middle")
	}
	if connector.KindOf(err) != connector.KindUnavailable {
		t.Errorf("kind %s, want Unavailable: %v", connector.KindOf(err), err)
	}
	if strings.Contains(err.Error(), "u-4711") || strings.Contains(connector.Summary(err), "u-4711") {
		t.Errorf("the error holds the identifier: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("objects left after the interrupted erase: %d of %d", countUnder(t, srv, b, "users/u-4711/"), n)
	if _, err := c.Erase(ctx, req); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if v := mustVerify(t, c, req); v.Remaining != 0 {
		t.Fatalf("after the re-run %d versions remain", v.Remaining)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"users/u-4712/keep"}) {
		t.Fatalf("left %d objects, want only the bystander", len(got))
	}
}

func seed(t *testing.T, mc *minio.Client, bucket, prefix string, n int) {
	t.Helper()
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := mc.PutObject(context.Background(), bucket, fmt.Sprintf("%s%05d", prefix, i), strings.NewReader("x"), 1, minio.PutObjectOptions{})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

func countUnder(t *testing.T, srv *teststore.S3, bucket, prefix string) int {
	t.Helper()
	mc := root(t, srv)
	n := 0
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("count: %v", o.Err)
		}
		n++
	}
	return n
}

func TestProviderRefusesBadConfig(t *testing.T) {
	p, err := connector.ProviderFor(privacyv1alpha1.StoreTypeS3)
	if err != nil {
		t.Fatal(err)
	}
	good := func() *privacyv1alpha1.DataStoreSpec {
		return &privacyv1alpha1.DataStoreSpec{
			Type:       privacyv1alpha1.StoreTypeS3,
			Connection: privacyv1alpha1.Connection{URL: "https://s3.example.com"},
			Objects:    []privacyv1alpha1.ObjectMapping{del("avatars", "users/{userId}/")},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*privacyv1alpha1.DataStoreSpec)
		secret string
		kind   connector.ErrorKind
	}{
		{"plain http without opt-in", func(s *privacyv1alpha1.DataStoreSpec) { s.Connection.URL = "http://s3.example.com" }, "a:b", connector.KindEgressDenied},
		{"secret without colon", nil, "justakey", connector.KindInvalid},
		{"url with a path", func(s *privacyv1alpha1.DataStoreSpec) { s.Connection.URL = "https://s3.example.com/bucket" }, "a:b", connector.KindInvalid},
		{"url with credentials", func(s *privacyv1alpha1.DataStoreSpec) { s.Connection.URL = "https://a:b@s3.example.com" }, "a:b", connector.KindInvalid},
		{"bad bucket", func(s *privacyv1alpha1.DataStoreSpec) { s.Objects[0].Bucket = "Bad_Bucket" }, "a:b", connector.KindMapping},
		{"key without placeholder", func(s *privacyv1alpha1.DataStoreSpec) { s.Objects[0].Key = "users/all/" }, "a:b", connector.KindMapping},
		{"retain without reason", func(s *privacyv1alpha1.DataStoreSpec) { s.Objects[0].Action = privacyv1alpha1.ObjectActionRetain }, "a:b", connector.KindMapping},
		{"keys on an s3 store", func(s *privacyv1alpha1.DataStoreSpec) {
			s.Keys = []privacyv1alpha1.KeyMapping{{Pattern: "a:{b}", Action: privacyv1alpha1.KeyActionDelete}}
		}, "a:b", connector.KindMapping},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			if tc.change != nil {
				tc.change(s)
			}
			_, err := p.NewClient(context.Background(), connector.Config{Spec: s, Secret: []byte(tc.secret)})
			if connector.KindOf(err) != tc.kind || err == nil {
				t.Fatalf("NewClient: %v; want kind %s", err, tc.kind)
			}
			if tc.secret == "justakey" && strings.Contains(err.Error(), "justakey") {
				t.Errorf("the error quotes the secret: %v", err)
			}
		})
	}
	if _, err := p.NewClient(context.Background(), connector.Config{Spec: good(), Secret: []byte("AK:SK")}); err != nil {
		t.Fatalf("a good spec is refused: %v", err)
	}
	names, any := p.IdentifierNames(&privacyv1alpha1.DataStoreSpec{Objects: []privacyv1alpha1.ObjectMapping{del("b12", "a/{userId}/{orderId}.json"), del("b12", "c/{email}")}})
	if !slices.Equal(names, []string{"userId", "orderId", "email"}) || any {
		t.Fatalf("IdentifierNames = %q, %v", names, any)
	}
}
