package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// delivered is an export uploaded to a bucket, as the controller leaves it.
type delivered struct {
	mc      *minio.Client
	bucket  string
	objects map[string]string // file name -> object
	bytes   map[string][]byte // file name -> uploaded bytes
}

// deliveredToBucket uploads json, csv and html of a small export to a fresh bucket and creates a
// completed AccessRequest whose Secret holds files.json with presigned links, as the controller
// writes them for spec.destination.
func deliveredToBucket(t *testing.T, name string) *delivered {
	t.Helper()
	ctx := context.Background()
	s3, err := teststore.StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	bucket, err := s3.CreateBucket(ctx, "exports", true, false)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	ar := &privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: name},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
			Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}},
			Formats: []privacyv1alpha1.ExportFormat{"json", "csv", "html"}}}
	if err := env.Client.Create(ctx, ar); err != nil {
		t.Fatal(err)
	}
	coll := &connector.Collection{Records: []connector.Record{{Location: "orders", Data: map[string]any{"id": 1, "item": "teapot"}}}}
	doc := export.Build(export.Request{Namespace: "audit", Name: name, UID: string(ar.UID)}, "GDPR", digest, time.Now(),
		[]export.StoreInput{{Kind: "DataStore", Name: "shop", Spec: &privacyv1alpha1.DataStoreSpec{Type: "postgres", Purposes: []string{"Selling teapots"}}, Data: coll}})
	jsonDoc, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	csvZip, err := export.RenderCSV(doc)
	if err != nil {
		t.Fatal(err)
	}
	html, err := export.RenderHTML(doc)
	if err != nil {
		t.Fatal(err)
	}
	d := &delivered{mc: mc, bucket: bucket, objects: map[string]string{}, bytes: map[string][]byte{}}
	prefix := "dsr/exports/" + string(ar.UID) + "/"
	expires := time.Now().Add(time.Hour).UTC()
	type entry struct {
		Name         string    `json:"name"`
		Format       string    `json:"format"`
		Object       string    `json:"object"`
		SHA256       string    `json:"sha256"`
		Bytes        int64     `json:"bytes"`
		URL          string    `json:"url"`
		URLExpiresAt time.Time `json:"urlExpiresAt"`
	}
	var manifest struct {
		Bucket string  `json:"bucket"`
		Prefix string  `json:"prefix"`
		Files  []entry `json:"files"`
	}
	manifest.Bucket, manifest.Prefix = bucket, prefix
	ref := &privacyv1alpha1.ExportReference{SecretName: name + "-export", ExpiresAt: &metav1.Time{Time: expires},
		Delivery: &privacyv1alpha1.DeliveryStatus{Bucket: bucket, Prefix: prefix}}
	for _, f := range []struct {
		format privacyv1alpha1.ExportFormat
		name   string
		data   []byte
	}{{"json", "export.json", jsonDoc}, {"csv", "export.csv.zip", csvZip}, {"html", "report.html", html}} {
		object := prefix + f.name
		if _, err := mc.PutObject(ctx, bucket, object, bytes.NewReader(f.data), int64(len(f.data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		link, err := mc.PresignedGetObject(ctx, bucket, object, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := receipt.Digest(f.data)
		d.objects[f.name], d.bytes[f.name] = object, f.data
		manifest.Files = append(manifest.Files, entry{Name: f.name, Format: string(f.format), Object: object, SHA256: sum,
			Bytes: int64(len(f.data)), URL: link.String(), URLExpiresAt: expires})
		ref.Files = append(ref.Files, privacyv1alpha1.ExportFile{Format: f.format, Key: f.name, SHA256: sum, Bytes: int64(len(f.data)), Encoding: "identity"})
	}
	first := ref.Files[0]
	ref.Key, ref.SHA256, ref.Bytes, ref.Encoding = first.Key, first.SHA256, first.Bytes, first.Encoding
	body, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: ref.SecretName}, Data: map[string][]byte{"files.json": body}}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	ar.Status.Phase, ar.Status.Export = privacyv1alpha1.PhaseCompleted, ref
	if err := env.Client.Status().Update(ctx, ar); err != nil {
		t.Fatal(err)
	}
	return d
}

// noLink fails when any part of a presigned link is in the plugin's output.
func noLink(t *testing.T, outputs ...string) {
	t.Helper()
	for _, s := range outputs {
		if strings.Contains(s, "X-Amz-") || strings.Contains(s, "http://") {
			t.Errorf("a link is printed: %q", s)
		}
	}
}

// TestExportFromBucket: a delivered export is downloaded through its links, every file written
// byte for byte, its name, size and digest printed, and no link printed.
func TestExportFromBucket(t *testing.T) {
	d := deliveredToBucket(t, "in-bucket")

	dir := filepath.Join(t.TempDir(), "jane")
	code, out, errOut := run(t, "export", "in-bucket", "-n", "audit", "--dir", dir)
	if code != 0 {
		t.Fatalf("--dir: exit %d: %s", code, errOut)
	}
	noLink(t, out, errOut)
	for name, want := range d.bytes {
		path := filepath.Join(dir, name)
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want the %d uploaded", name, len(got), err, len(want))
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", name, fi, err)
		}
		if !strings.Contains(out, path) {
			t.Errorf("%s: path not printed: %q", name, out)
		}
		if !strings.Contains(errOut, name+": ") || !strings.Contains(errOut, receipt.Digest(want)) {
			t.Errorf("%s: name and digest not printed: %q", name, errOut)
		}
	}

	code, out, errOut = run(t, "export", "in-bucket", "-n", "audit", "--format", "html")
	path := strings.TrimSpace(out)
	if code != 0 || !strings.HasSuffix(path, "report.html") {
		t.Fatalf("--format html: exit %d, %q, %s", code, out, errOut)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, d.bytes["report.html"]) || !strings.Contains(string(got), "Selling teapots") {
		t.Errorf("the printed path does not hold the report: %v", err)
	}
	if strings.Contains(errOut, "export.json") {
		t.Errorf("--format html downloaded other files: %q", errOut)
	}

	code, out, errOut = run(t, "export", "in-bucket", "-n", "audit")
	if code != 0 || out != string(d.bytes["export.json"]) {
		t.Errorf("the default is the JSON document on stdout: exit %d, %.80q, %s", code, out, errOut)
	}
	noLink(t, out, errOut)
}

// TestExportFromBucketRefusesWrongBytes: a file whose bytes in the bucket differ from the recorded
// digest, and a file gone from the bucket, are not written, and the error quotes no link.
func TestExportFromBucketRefusesWrongBytes(t *testing.T) {
	d := deliveredToBucket(t, "tampered")
	ctx := context.Background()
	forged := bytes.Clone(d.bytes["export.json"])
	forged[len(forged)/2] ^= 1 // same size, other digest
	if _, err := d.mc.PutObject(ctx, d.bucket, d.objects["export.json"], bytes.NewReader(forged), int64(len(forged)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "jane.json")
	code, stdout, errOut := run(t, "export", "tampered", "-n", "audit", "-o", out)
	if code != 1 || !strings.Contains(errOut, "export.json: the downloaded digest") || !strings.Contains(errOut, "not written") {
		t.Errorf("forged bytes: exit %d, %q; want 1 and the digest mismatch", code, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the forged file was written: %v", err)
	}
	noLink(t, stdout, errOut)

	if err := d.mc.RemoveObject(ctx, d.bucket, d.objects["report.html"], minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "jane")
	code, stdout, errOut = run(t, "export", "tampered", "-n", "audit", "--format", "html")
	if code != 1 || !strings.Contains(errOut, "report.html: the bucket answered 404") {
		t.Errorf("a deleted file: exit %d, %q; want 1 and the 404", code, errOut)
	}
	noLink(t, stdout, errOut)
	if code, _, _ := run(t, "export", "tampered", "-n", "audit", "--dir", dir); code != 1 {
		t.Errorf("--dir with a forged file: exit %d, want 1", code)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("--dir wrote %d files although one failed verification", len(entries))
	}
}

// TestExportFromBucketRefusesDisagreement: status and files.json recording different digests for a
// file is refused before anything is downloaded.
func TestExportFromBucketRefusesDisagreement(t *testing.T) {
	deliveredToBucket(t, "disagree")
	ctx := context.Background()
	var ar privacyv1alpha1.AccessRequest
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: "disagree"}, &ar); err != nil {
		t.Fatal(err)
	}
	ar.Status.Export.Files[0].SHA256 = digest
	if err := env.Client.Status().Update(ctx, &ar); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "export", "disagree", "-n", "audit")
	if code != 1 || !strings.Contains(errOut, "export.json: files.json records") || !strings.Contains(errOut, "not downloaded") {
		t.Errorf("exit %d, %q; want 1 and the disagreement", code, errOut)
	}
	noLink(t, out, errOut)
}
