package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minio/minio-go/v7"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// manifestEntry is one file of the export Secret's files.json, as a portal reads it.
type manifestEntry struct {
	Name   string `json:"name"`
	Object string `json:"object"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	URL    string `json:"url"`
}

// startDestination starts an S3 server with a versioned bucket, and writes the destination's
// credentials Secret into ns.
func startDestination(t *testing.T, ns string) (*teststore.S3, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s3, err := teststore.StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	bucket, err := s3.CreateBucket(ctx, "exports", true, false)
	if err != nil {
		t.Fatal(err)
	}
	create(t, connSecret(ns, "bucket-conn", map[string]string{"credentials": s3.Secret()}))
	return s3, bucket
}

func withDestination(s3 *teststore.S3, bucket string, ttl time.Duration) func(*privacyv1alpha1.AccessRequest) {
	return func(ar *privacyv1alpha1.AccessRequest) {
		ar.Spec.Formats = []privacyv1alpha1.ExportFormat{"json", "csv", "html"}
		ar.Spec.TTL = &metav1.Duration{Duration: ttl}
		ar.Spec.Destination = &privacyv1alpha1.ExportDestination{S3: &privacyv1alpha1.S3Destination{
			URL: s3.Endpoint(), Bucket: bucket, Prefix: "dsr/exports", AllowInsecureHTTP: true,
			SecretRef: privacyv1alpha1.SecretKeySelector{Name: "bucket-conn", Key: "credentials"}}}
	}
}

// versionsIn counts every version (delete markers included) in the bucket.
func versionsIn(t *testing.T, s3 *teststore.S3, bucket string) int {
	t.Helper()
	mc, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

// readManifest reads files.json from the export Secret.
func readManifest(t *testing.T, ar *privacyv1alpha1.AccessRequest) []manifestEntry {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), keyOf(ar.Namespace, ar.Status.Export.SecretName), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Data) != 1 {
		t.Errorf("the export Secret holds %d keys, want files.json alone", len(s.Data))
	}
	var m struct {
		Files []manifestEntry `json:"files"`
	}
	if err := json.Unmarshal(s.Data["files.json"], &m); err != nil {
		t.Fatal(err)
	}
	return m.Files
}

// assertNoLinkIn checks that no part of a link is in the request's status or the namespace's events.
func assertNoLinkIn(t *testing.T, ar *privacyv1alpha1.AccessRequest, files []manifestEntry) {
	t.Helper()
	status, _ := json.Marshal(ar.Status)
	evs, err := eventsAbout(ar.Namespace, ar.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		sig := f.URL[strings.Index(f.URL, "X-Amz-Signature=")+len("X-Amz-Signature="):]
		if strings.Contains(string(status), sig) || strings.Contains(string(status), "X-Amz-") {
			t.Errorf("a link is in the status: %s", status)
		}
		for _, e := range evs {
			if strings.Contains(e.Message, sig) || strings.Contains(e.Message, "X-Amz-") {
				t.Errorf("a link is in an event: %s", e.Message)
			}
		}
	}
}

// TestAccessExportToBucket: the files go to <prefix>/<uid>/ in the bucket, the links in the
// export Secret download exactly the bytes whose digests status and Secret record, no link is in
// status or events, and at the TTL every version is deleted and the deletion verified.
func TestAccessExportToBucket(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	s3, bucket := startDestination(t, ns)
	f := startSQLiteFixture(t)
	f.seed(t, subjectIDs, 100)
	f.dataStore(t, ns, "shop")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "to-bucket", "jane", withDestination(s3, bucket, 40*time.Second)))

	ar := waitAR(t, ns, "to-bucket", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	d := ar.Status.Export.Delivery
	if d == nil || d.Bucket != bucket || d.Prefix != "dsr/exports/"+string(ar.UID)+"/" {
		t.Fatalf("status.export.delivery %+v", d)
	}
	files := readManifest(t, ar)
	if len(files) != 3 || len(ar.Status.Export.Files) != 3 {
		t.Fatalf("%d files in the Secret, %d in status; want 3", len(files), len(ar.Status.Export.Files))
	}
	for i, mf := range files {
		sf := ar.Status.Export.Files[i]
		if mf.Name != sf.Key || mf.SHA256 != sf.SHA256 || mf.Bytes != sf.Bytes || mf.Object != d.Prefix+mf.Name {
			t.Errorf("Secret %+v and status %+v disagree", mf, sf)
		}
		resp, err := http.Get(mf.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || receipt.Digest(body) != sf.SHA256 || int64(len(body)) != sf.Bytes {
			t.Errorf("%s: the link gave HTTP %d, %d bytes not matching the recorded digest", mf.Name, resp.StatusCode, len(body))
		}
		if mf.Name == "export.json" && !strings.Contains(string(body), subjectIDs["email"]) {
			t.Error("the JSON export does not hold the person's records")
		}
	}
	if n := versionsIn(t, s3, bucket); n != 3 {
		t.Errorf("%d versions in the bucket, want 3", n)
	}
	assertNoLinkIn(t, ar, files)

	ar = waitAR(t, ns, "to-bucket", privacyv1alpha1.ConditionExpired, metav1.ConditionTrue, privacyv1alpha1.ReasonExpired, settle)
	if n := versionsIn(t, s3, bucket); n != 0 {
		t.Errorf("%d versions left in the bucket after expiry", n)
	}
	if d := ar.Status.Export.Delivery; d.Removed != 3 || d.Remaining != 0 || d.VerifiedAt == nil {
		t.Errorf("status.export.delivery after expiry %+v", d)
	}
	if msg := condition(ar.Status.Conditions, privacyv1alpha1.ConditionExpired); !strings.Contains(msg, "3 object versions were deleted") {
		t.Errorf("Expired says %q", msg)
	}
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), keyOf(ns, ar.Status.Export.SecretName), &s); err == nil {
		t.Error("the export Secret outlived the TTL")
	}
	assertNoLinkIn(t, ar, files)
	eventually(t, settle, func() (bool, string) {
		ar = getAR(t, ns, "to-bucket")
		return len(ar.Finalizers) == 0, fmt.Sprintf("finalizers %v after expiry", ar.Finalizers)
	})
}

// TestDeletingTheRequestEmptiesTheBucket: a request deleted before its TTL takes its files out
// of the bucket, every version, before it goes.
func TestDeletingTheRequestEmptiesTheBucket(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	s3, bucket := startDestination(t, ns)
	f := startSQLiteFixture(t)
	f.seed(t, subjectIDs, 100)
	f.dataStore(t, ns, "shop")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "deleted-early", "jane", withDestination(s3, bucket, time.Hour)))

	ar := waitAR(t, ns, "deleted-early", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	if n := versionsIn(t, s3, bucket); n != 3 || !slices.Contains(ar.Finalizers, "privacy.dsr.dev/export-destination") {
		t.Fatalf("%d versions in the bucket, finalizers %v", n, ar.Finalizers)
	}
	if err := env.Client.Delete(context.Background(), ar); err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, func() (bool, string) {
		err := env.Client.Get(context.Background(), keyOf(ns, "deleted-early"), &privacyv1alpha1.AccessRequest{})
		return apierrors.IsNotFound(err), fmt.Sprintf("the request is still there (%v)", err)
	})
	if n := versionsIn(t, s3, bucket); n != 0 {
		t.Errorf("%d versions left in the bucket after the request was deleted", n)
	}
}

// TestAccessExportExpiryRetriedWhileBucketDown: with the server down at the TTL the expiry fails,
// is shown in status and retried with backoff, and completes once the server is back.
func TestAccessExportExpiryRetriedWhileBucketDown(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	s3, bucket := startDestination(t, ns)
	f := startSQLiteFixture(t)
	f.seed(t, subjectIDs, 100)
	f.dataStore(t, ns, "shop")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "bucket-down", "jane", withDestination(s3, bucket, 15*time.Second)))

	waitAR(t, ns, "bucket-down", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	if err := s3.Stop(); err != nil {
		t.Fatal(err)
	}
	ar := waitAR(t, ns, "bucket-down", privacyv1alpha1.ConditionExpired, metav1.ConditionFalse, "ExpiryRetrying", settle)
	d := ar.Status.Export.Delivery
	if d.Attempts < 1 || d.NextAttemptAt == nil || d.Message == "" || ar.Status.Phase != privacyv1alpha1.PhaseCompleted {
		t.Fatalf("a failing expiry is not shown: phase %s, delivery %+v", ar.Status.Phase, d)
	}
	if strings.Contains(d.Message, s3.Endpoint()) || strings.Contains(d.Message, string(ar.UID)) {
		t.Errorf("the failure quotes the endpoint or the folder: %q", d.Message)
	}
	// The Secret stays while the files are there.
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), keyOf(ns, ar.Status.Export.SecretName), &s); err != nil {
		t.Errorf("the export Secret went before its files: %v", err)
	}
	// Let a retry fail too, then bring the server back.
	eventually(t, settle, func() (bool, string) {
		ar = getAR(t, ns, "bucket-down")
		return ar.Status.Export.Delivery.Attempts >= 2, "a second attempt"
	})
	if err := s3.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ar = waitAR(t, ns, "bucket-down", privacyv1alpha1.ConditionExpired, metav1.ConditionTrue, privacyv1alpha1.ReasonExpired, 2*settle)
	if n := versionsIn(t, s3, bucket); n != 0 {
		t.Errorf("%d versions left in the bucket after expiry", n)
	}
	if d := ar.Status.Export.Delivery; d.Removed != 3 || d.Attempts != 0 || d.Message != "" {
		t.Errorf("status.export.delivery after expiry %+v", d)
	}
	evs, _ := eventsAbout(ns, "bucket-down")
	if !strings.Contains(describeEvents(evs), "ExpiryRetrying") {
		t.Errorf("no ExpiryRetrying event: %s", describeEvents(evs))
	}
}

// TestDestinationValidation: the API server refuses an invalid bucket name and a prefix that
// climbs out of its folder.
func TestDestinationValidation(t *testing.T) {
	ns := newNamespace(t, nil)
	for name, mutate := range map[string]func(*privacyv1alpha1.S3Destination){
		"bad-bucket":   func(d *privacyv1alpha1.S3Destination) { d.Bucket = "Not_A_Bucket" },
		"dotted":       func(d *privacyv1alpha1.S3Destination) { d.Bucket = "a..b" },
		"climbing":     func(d *privacyv1alpha1.S3Destination) { d.Prefix = "exports/../other" },
		"dot-segment":  func(d *privacyv1alpha1.S3Destination) { d.Prefix = "./x" },
		"absolute":     func(d *privacyv1alpha1.S3Destination) { d.Prefix = "/exports" },
		"control-char": func(d *privacyv1alpha1.S3Destination) { d.Prefix = "a\nb" },
		"not-a-url":    func(d *privacyv1alpha1.S3Destination) { d.URL = "s3.example.com" },
	} {
		t.Run(name, func(t *testing.T) {
			ar := accessRequest(ns, name, "jane", func(ar *privacyv1alpha1.AccessRequest) {
				d := &privacyv1alpha1.S3Destination{URL: "https://s3.example.com", Bucket: "exports", Prefix: "dsr/exports",
					SecretRef: privacyv1alpha1.SecretKeySelector{Name: "bucket-conn", Key: "credentials"}}
				mutate(d)
				ar.Spec.Destination = &privacyv1alpha1.ExportDestination{S3: d}
			})
			if err := env.Client.Create(context.Background(), ar); err == nil {
				t.Errorf("accepted %+v", ar.Spec.Destination.S3)
			}
		})
	}
	ok := accessRequest(ns, "valid", "jane", func(ar *privacyv1alpha1.AccessRequest) {
		ar.Spec.Destination = &privacyv1alpha1.ExportDestination{S3: &privacyv1alpha1.S3Destination{URL: "https://s3.example.com",
			Bucket: "my.exports-1", Prefix: "dsr/exports..v2/", SecretRef: privacyv1alpha1.SecretKeySelector{Name: "c", Key: "k"}}}
	})
	if err := env.Client.Create(context.Background(), ok); err != nil {
		t.Errorf("a valid destination was refused: %v", err)
	}
}

// TestAccessExportToMissingBucketIsRetried: a bucket that does not exist keeps the request
// undelivered with a reason that names the S3 error, not the endpoint or the folder.
func TestAccessExportToMissingBucketIsRetried(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	s3, _ := startDestination(t, ns)
	f := startSQLiteFixture(t)
	f.seed(t, subjectIDs, 100)
	f.dataStore(t, ns, "shop")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "no-bucket", "jane", withDestination(s3, "no-such-bucket", time.Hour)))

	ar := waitAR(t, ns, "no-bucket", privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonExportNotDelivered, settle)
	msg := condition(ar.Status.Conditions, privacyv1alpha1.ConditionReady)
	if !strings.Contains(msg, "NoSuchBucket") || strings.Contains(msg, s3.Endpoint()) || strings.Contains(msg, string(ar.UID)) {
		t.Errorf("Ready says %q", msg)
	}
	if ar.Status.Export != nil || ar.Status.Phase == privacyv1alpha1.PhaseCompleted {
		t.Errorf("an undelivered export is recorded: phase %s, %+v", ar.Status.Phase, ar.Status.Export)
	}
}

// TestDeletingTheRequestWithoutCredentials: a request whose destination credentials are gone
// (its namespace being deleted) is not held for ever: it goes, with a Warning that its files
// could not be deleted.
func TestDeletingTheRequestWithoutCredentials(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	s3, bucket := startDestination(t, ns)
	f := startSQLiteFixture(t)
	f.seed(t, subjectIDs, 100)
	f.dataStore(t, ns, "shop")
	create(t, secret(ns, "jane", subjectIDs))
	create(t, accessRequest(ns, "orphaned", "jane", withDestination(s3, bucket, time.Hour)))

	ar := waitAR(t, ns, "orphaned", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bucket-conn"}}
	if err := env.Client.Delete(context.Background(), creds); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), ar); err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, func() (bool, string) {
		err := env.Client.Get(context.Background(), keyOf(ns, "orphaned"), &privacyv1alpha1.AccessRequest{})
		return apierrors.IsNotFound(err), fmt.Sprintf("the request is still there (%v)", err)
	})
	eventually(t, settle, func() (bool, string) {
		evs, _ := eventsAbout(ns, "orphaned")
		return strings.Contains(describeEvents(evs), "ExportNotDeleted"), describeEvents(evs)
	})
	if n := versionsIn(t, s3, bucket); n != 3 {
		t.Errorf("%d versions in the bucket; the files could not have been deleted", n)
	}
}
