package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/export"
)

// exportedInFormats creates a completed AccessRequest whose Secret holds json, csv and html, as
// the controller stores them.
func exportedInFormats(t *testing.T, name string) []*export.Encoded {
	t.Helper()
	ctx := context.Background()
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
	files, err := export.EncodeFiles(doc, ar.Spec.Formats, 0)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: name + "-export"}, Data: map[string][]byte{}}
	ref := &privacyv1alpha1.ExportReference{SecretName: secret.Name, Key: files[0].Key, SHA256: files[0].SHA256,
		Bytes: int64(len(files[0].Bytes)), Encoding: files[0].Encoding}
	for _, f := range files {
		secret.Data[f.Key] = f.Bytes
		ref.Files = append(ref.Files, privacyv1alpha1.ExportFile{Format: f.Format, Key: f.Key, SHA256: f.SHA256, Bytes: int64(len(f.Bytes)), Encoding: f.Encoding})
	}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	ar.Status.Phase, ar.Status.Export = privacyv1alpha1.PhaseCompleted, ref
	if err := env.Client.Status().Update(ctx, ar); err != nil {
		t.Fatal(err)
	}
	return files
}

func TestExportFormats(t *testing.T) {
	exportedInFormats(t, "formats")

	dir := filepath.Join(t.TempDir(), "jane")
	code, out, errOut := run(t, "export", "formats", "-n", "audit", "--dir", dir)
	if code != 0 {
		t.Fatalf("--dir: %d %s", code, errOut)
	}
	for _, name := range []string{"export.json", "export.csv.zip", "report.html"} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(out, path) {
			t.Errorf("%s: %v %v; printed %q", name, fi, err, out)
		}
	}
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !strings.Contains(string(html), "Selling teapots") {
		t.Error("report.html is not the decompressed report")
	}

	code, out, errOut = run(t, "export", "formats", "-n", "audit", "--format", "html")
	path := strings.TrimSpace(out)
	if code != 0 || !strings.HasSuffix(path, "report.html") {
		t.Fatalf("--format html: %d %q %s", code, out, errOut)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	if got, err := os.ReadFile(path); err != nil || string(got) != string(html) {
		t.Errorf("the printed path does not hold the report: %v", err)
	}

	if code, out, _ := run(t, "export", "formats", "-n", "audit"); code != 0 || !strings.Contains(out, `"format": "privacy.dsr.dev/access-export/v1"`) {
		t.Errorf("the default is the JSON document on stdout: %d %.80q", code, out)
	}

	exported(t, "json-only", 1)
	if code, _, errOut := run(t, "export", "json-only", "-n", "audit", "--format", "csv"); code != 1 || !strings.Contains(errOut, "has no csv file") {
		t.Errorf("a format not asked for: %d %s", code, errOut)
	}
	if code, _, _ := run(t, "export", "formats", "-n", "audit", "--dir", dir, "-o", "x"); code != 2 {
		t.Errorf("--dir with -o: exit %d, want 2", code)
	}
}
