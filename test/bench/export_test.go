package bench

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// The export mode (BENCH_MODE=export): one person with enough records in one PostgreSQL table for
// an access export of about BENCH_EXPORT_MB (default 50) MB in JSON + CSV + HTML, delivered by the
// manager to a bucket on the S3 test server. It records the manager's peak RSS, downloads every
// file through its link and checks it against the recorded digest and size, then waits for the
// TTL (BENCH_EXPORT_TTL, default 3m) and checks that no version of any file is left in the bucket.

// exportRecordBytes is about what one seeded record adds to the three files together (its
// 512-character hex note in JSON, in HTML and, zipped, in CSV), measured on a small run.
const exportRecordBytes = 1650

const exportSubject = "jane.export@example.org"

func runExport(t *testing.T, ctx context.Context, root, outDir string, diag bool, logf func(string, ...any)) {
	t.Helper()
	mb, ttl := 50, 3*time.Minute
	if v := os.Getenv("BENCH_EXPORT_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BENCH_EXPORT_MB=%q: want a positive number", v)
		}
		mb = n
	}
	if v := os.Getenv("BENCH_EXPORT_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("BENCH_EXPORT_TTL=%q: want a duration of 10s or more", v)
		}
		ttl = d
	}
	records := mb << 20 / exportRecordBytes

	logf("mode export: starting the control plane, PostgreSQL and the S3 server")
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	pg, err := teststore.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	s3, err := teststore.StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	bucket, err := s3.CreateBucket(ctx, "exports", true, false)
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := pg.CreateDatabase(ctx, "export")
	if err != nil {
		t.Fatal(err)
	}
	logf("seeding %d records of one person (and 1000 of a bystander)", records)
	seedExport(t, ctx, dsn, records)

	c, err := client.New(env.Config, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{operatorNamespace, benchNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	mgr := startManager(t, buildManager(t, root, outDir), outDir, "manager.log", env.KubeConfig, diag)
	connection := map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeConnection}
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "pg", Labels: connection}, StringData: map[string]string{"secret": dsn}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "bucket", Labels: connection}, StringData: map[string]string{"credentials": s3.Secret()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "jane",
			Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeIdentifiers}},
			StringData: map[string]string{"email": exportSubject}},
		&privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "pg"}, Spec: privacyv1alpha1.DataStoreSpec{
			Type: privacyv1alpha1.StoreTypePostgres, Purposes: []string{"Keeping the customer's notes"}, Retention: "Until the account is closed",
			Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "pg", Key: "secret"}},
			Tables: []privacyv1alpha1.TableMapping{{Name: "notes", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}}}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	waitDataStoresReady(t, ctx, c, benchNamespace, 1)
	idleAnon, idleFile := rssMiB(mgr.pid())

	logf("filing the AccessRequest: json, csv and html to bucket %s, TTL %s", bucket, ttl)
	start := time.Now()
	ar := &privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "export"},
		Spec: privacyv1alpha1.AccessRequestSpec{
			RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
				Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "jane"}}},
			Formats: []privacyv1alpha1.ExportFormat{privacyv1alpha1.ExportFormatJSON, privacyv1alpha1.ExportFormatCSV, privacyv1alpha1.ExportFormatHTML},
			TTL:     &metav1.Duration{Duration: ttl},
			Destination: &privacyv1alpha1.ExportDestination{S3: &privacyv1alpha1.S3Destination{
				URL: s3.Endpoint(), Bucket: bucket, Prefix: "dsr/exports", AllowInsecureHTTP: true,
				SecretRef: privacyv1alpha1.SecretKeySelector{Name: "bucket", Key: "credentials"}}}}}
	if err := c.Create(ctx, ar); err != nil {
		t.Fatal(err)
	}
	ar = waitExportCondition(t, ctx, c, privacyv1alpha1.ConditionReady, privacyv1alpha1.ReasonExportDelivered, ttl+5*time.Minute, mgr.logPath)
	delivered := time.Since(start)
	peak, err := peakRSSMiB(mgr.pid())
	if err != nil {
		t.Fatal(err)
	}
	var collected int64
	for _, st := range ar.Status.Stores {
		collected += st.Records
	}
	if collected != int64(records) {
		t.Fatalf("the export holds %d records, %d seeded", collected, records)
	}
	logf("delivered in %.1fs; manager peak RSS %.1f MiB (idle before: %.1f MiB anon + %.1f MiB file)", delivered.Seconds(), peak, idleAnon, idleFile)

	sizes := downloadAndVerify(t, ctx, c, ar)
	var total int64
	for _, n := range sizes {
		total += n
	}
	logf("downloaded through the links: json %.1f MiB, csv.zip %.1f MiB, html %.1f MiB; digests and sizes as recorded",
		mib(sizes["export.json"]), mib(sizes["export.csv.zip"]), mib(sizes["report.html"]))

	logf("waiting for the TTL")
	ar = waitExportCondition(t, ctx, c, privacyv1alpha1.ConditionExpired, privacyv1alpha1.ReasonExpired, ttl+5*time.Minute, mgr.logPath)
	left := versionsLeft(t, ctx, s3, bucket)
	if left != 0 {
		t.Errorf("%d object versions are left in the bucket after the TTL", left)
	}
	if d := ar.Status.Export.Delivery; d == nil || d.Remaining != 0 || d.VerifiedAt == nil {
		t.Errorf("status.export.delivery after the TTL: %+v", d)
	}
	writeSummary(t, fmt.Sprintf("bench: mode=export records=%d export_mib=%.1f json_mib=%.1f csv_zip_mib=%.1f html_mib=%.1f deliver_seconds=%.1f manager_idle_rss_mib=%.1f manager_peak_rss_mib=%.1f versions_left_after_ttl=%d\n",
		records, mib(total), mib(sizes["export.json"]), mib(sizes["export.csv.zip"]), mib(sizes["report.html"]),
		delivered.Seconds(), idleAnon+idleFile, peak, left))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// seedExport writes records rows of the person and 1000 of a bystander into notes, each with a
// 512-character hex note, which zip cannot shrink much.
func seedExport(t *testing.T, ctx context.Context, dsn string, records int) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE notes (id bigserial PRIMARY KEY, email text NOT NULL, written date NOT NULL, note text NOT NULL)`,
		`CREATE INDEX ON notes (email)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	const insert = `INSERT INTO notes (email, written, note)
		SELECT $1, DATE '2020-01-01' + (i % 2000), (SELECT string_agg(md5(i::text || '-' || j::text), '') FROM generate_series(1, 16) j)
		FROM generate_series(1, $2::int) i`
	for email, n := range map[string]int{exportSubject: records, "bystander@example.org": 1000} {
		if _, err := db.ExecContext(ctx, insert, email, n); err != nil {
			t.Fatal(err)
		}
	}
}

// waitExportCondition polls the request until cond is True with reason, and fails at once when it
// fails.
func waitExportCondition(t *testing.T, ctx context.Context, c client.Client, cond, reason string, timeout time.Duration, logPath string) *privacyv1alpha1.AccessRequest {
	t.Helper()
	var ar privacyv1alpha1.AccessRequest
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: "export"}, &ar); err != nil {
			t.Fatal(err)
		}
		if cd := meta.FindStatusCondition(ar.Status.Conditions, cond); cd != nil && cd.Status == metav1.ConditionTrue && cd.Reason == reason {
			return &ar
		}
		if ar.Status.Phase == privacyv1alpha1.PhaseFailed || time.Now().After(deadline) {
			t.Fatalf("waiting for %s=%s: phase %s, conditions %+v (manager log: %s)", cond, reason, ar.Status.Phase, ar.Status.Conditions, logPath)
		}
	}
}

// downloadAndVerify streams every file of files.json through its link and checks its size and
// digest against the manifest and status.export.files. It returns the sizes by file name.
func downloadAndVerify(t *testing.T, ctx context.Context, c client.Client, ar *privacyv1alpha1.AccessRequest) map[string]int64 {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ar.Namespace, Name: ar.Status.Export.SecretName}, &s); err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Files []struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
			Bytes  int64  `json:"bytes"`
			URL    string `json:"url"`
		} `json:"files"`
	}
	if err := json.Unmarshal(s.Data["files.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Files) != 3 || len(ar.Status.Export.Files) != 3 {
		t.Fatalf("%d files in files.json, %d in status; want 3", len(manifest.Files), len(ar.Status.Export.Files))
	}
	sizes := map[string]int64{}
	for i, f := range manifest.Files {
		if st := ar.Status.Export.Files[i]; st.Key != f.Name || st.SHA256 != f.SHA256 || st.Bytes != f.Bytes {
			t.Fatalf("files.json and status disagree on %s", f.Name)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: downloading failed", f.Name) // the error would quote the link
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d, %v", f.Name, resp.StatusCode, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != f.SHA256 || n != f.Bytes {
			t.Fatalf("%s: downloaded %d bytes with %s; recorded %d with %s", f.Name, n, got, f.Bytes, f.SHA256)
		}
		sizes[f.Name] = n
	}
	return sizes
}

// versionsLeft counts every version (delete markers included) in the bucket.
func versionsLeft(t *testing.T, ctx context.Context, s3 *teststore.S3, bucket string) int {
	t.Helper()
	mc, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}
