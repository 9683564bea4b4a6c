package deliver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/egress"
	"github.com/dsr-operator/dsr-operator/internal/export/deliver"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func startS3(t *testing.T) *teststore.S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := teststore.StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func target(t *testing.T, s *teststore.S3, bucket string) *deliver.Target {
	t.Helper()
	tg, err := deliver.New(deliver.Config{
		Destination: &privacyv1alpha1.S3Destination{URL: s.Endpoint(), Bucket: bucket, Prefix: "exports/"},
		Credentials: []byte(s.Secret()), Egress: &egress.Policy{AllowInsecureHTTP: true}, RequestUID: "uid-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Close)
	return tg
}

// TestUploadLinkExpire: a file larger than one part streams up, its link downloads exactly the
// bytes whose digest was recorded, and expiry leaves no version of it (nor of an older upload).
func TestUploadLinkExpire(t *testing.T) {
	s := startS3(t)
	ctx := context.Background()
	bucket, err := s.CreateBucket(ctx, "dest", true, false)
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t, s, bucket)
	if tg.Prefix != "exports/uid-1/" {
		t.Fatalf("folder %q", tg.Prefix)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef<script>\n"), (deliver.PartSize+1<<20)/25)
	for range 2 { // the second upload leaves an older version behind
		if _, err := tg.Upload(ctx, "export.json", "application/json", func(w io.Writer) error {
			_, err := w.Write(payload[:100])
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	up, err := tg.Upload(ctx, "report.html", "text/html", func(w io.Writer) error {
		for chunk := range slicesOf(payload, 1<<20) {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if up.Bytes != int64(len(payload)) || up.SHA256 != "sha256:"+hex.EncodeToString(sum[:]) || up.Object != "exports/uid-1/report.html" {
		t.Fatalf("uploaded %+v", up)
	}
	link, lifetime, err := tg.Link(ctx, up.Object, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if lifetime != deliver.MaxLinkLifetime {
		t.Errorf("lifetime %v, want the cap", lifetime)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("link: HTTP %d, %d bytes (want %d)", resp.StatusCode, len(got), len(payload))
	}

	res, err := tg.Expire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 3 || res.Remaining != 0 {
		t.Errorf("expiry %+v, want 3 versions removed and none left", res)
	}
	mc, _ := s.Client()
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		t.Errorf("left in the bucket: %s %s (err %v)", o.Key, o.VersionID, o.Err)
	}
	if resp, err := http.Get(link); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the link still downloads after expiry")
		}
	}
}

// TestWriterFailureFailsTheUpload: a renderer that fails leaves no object, and the error says so.
func TestWriterFailureFailsTheUpload(t *testing.T) {
	s := startS3(t)
	ctx := context.Background()
	bucket, err := s.CreateBucket(ctx, "dest", false, false)
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t, s, bucket)
	boom := errors.New("render failed")
	if _, err := tg.Upload(ctx, "x.json", "application/json", func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return boom
	}); err == nil {
		t.Fatal("the upload succeeded with a failed renderer")
	}
	mc, _ := s.Client()
	if _, err := mc.StatObject(ctx, bucket, tg.Prefix+"x.json", minio.StatObjectOptions{}); err == nil {
		t.Error("a partial file was stored")
	}
	// On a bucket without versioning, expiry removes the one version there is.
	if _, err := tg.Upload(ctx, "x.json", "application/json", func(w io.Writer) error {
		_, err := w.Write([]byte("{}"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if res, err := tg.Expire(ctx); err != nil || res.Removed != 1 || res.Remaining != 0 {
		t.Errorf("expiry of an unversioned bucket: %+v, %v", res, err)
	}
}

// TestServerDownIsTransientAndQuotesNoURL: with the server stopped, expiry fails as transient and
// the error holds neither the endpoint nor the folder.
func TestServerDownIsTransientAndQuotesNoURL(t *testing.T) {
	s := startS3(t)
	ctx := context.Background()
	bucket, err := s.CreateBucket(ctx, "dest", false, false)
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t, s, bucket)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = tg.Expire(ctx)
	if err == nil || !deliver.IsTransient(err) {
		t.Fatalf("err %v, want a transient failure", err)
	}
	for _, leak := range []string{s.Endpoint(), tg.Prefix, bucket, "http"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("the error %q quotes %q", err, leak)
		}
	}
}

// TestPlainHTTPNeedsOptIn: the egress policy refuses http:// unless the destination opts in.
func TestPlainHTTPNeedsOptIn(t *testing.T) {
	d := &privacyv1alpha1.S3Destination{URL: "http://127.0.0.1:9", Bucket: "abc"}
	cfg := deliver.Config{Destination: d, Credentials: []byte("a:b"), RequestUID: "u"}
	if _, err := deliver.New(cfg); err == nil {
		t.Fatal("plain http accepted without opt-in")
	}
	d.AllowInsecureHTTP = true
	if _, err := deliver.New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := deliver.New(deliver.Config{Destination: d, Credentials: []byte("nocolon"), RequestUID: "u"}); err == nil || strings.Contains(err.Error(), "nocolon") {
		t.Fatalf("bad credentials: %v", err)
	}
}

func slicesOf(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// TestUploadMemoryIsBounded: a 64 MiB file written in 1 MiB chunks is uploaded without the
// upload allocating anything near its size: memory is one part, not the file.
func TestUploadMemoryIsBounded(t *testing.T) {
	s := startS3(t)
	ctx := context.Background()
	bucket, err := s.CreateBucket(ctx, "dest", false, false)
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t, s, bucket)
	const size = 64 << 20
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	up, err := tg.Upload(ctx, "big.json", "application/json", func(w io.Writer) error {
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if up.Bytes != size {
		t.Fatalf("uploaded %d bytes", up.Bytes)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB for a %d MiB upload", allocated>>20, size>>20)
	if allocated > size/2 {
		t.Errorf("the upload allocated %d MiB for a %d MiB file: it is not streamed", allocated>>20, size>>20)
	}
}
