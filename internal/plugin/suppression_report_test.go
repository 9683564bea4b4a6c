package plugin_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// dropList creates a DROP SuppressionList whose status names reportSecret, as the operator
// leaves it after a sweep (no operator runs here).
func dropList(t *testing.T, ns, name, reportSecret string) {
	t.Helper()
	ctx := context.Background()
	l := &privacyv1alpha1.SuppressionList{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: privacyv1alpha1.SuppressionListSpec{Source: privacyv1alpha1.SuppressionSource{
			DropSecretRef: &privacyv1alpha1.LocalObjectReference{Name: name + "-download"}}}}
	if err := env.Client.Create(ctx, l); err != nil {
		t.Fatal(err)
	}
	l.Status.ReportSecretName = reportSecret
	if err := env.Client.Status().Update(ctx, l); err != nil {
		t.Fatal(err)
	}
}

func putSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := env.Client.Create(ctx, s); err != nil {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
			t.Fatal(err)
		}
		s.Data = data
		if err := env.Client.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// splitReport stores a report of n items split as the operator splits it, and returns its CSV
// and the index.
func splitReport(t *testing.T, ns, first string, n int) ([]byte, *suppression.ReportIndex) {
	t.Helper()
	lines := make([]string, n)
	for i := range lines {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		lines[i] = fmt.Sprintf("%s,%d", hex.EncodeToString(sum[:10]), []int{3, 5, 2, 4}[i%4])
	}
	sort.Strings(lines)
	enc, err := suppression.EncodeReport(lines, 96<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc.Parts) < 3 {
		t.Fatalf("%d items made %d parts; the test needs several", n, len(enc.Parts))
	}
	for i, p := range enc.Parts {
		enc.Index.Parts[i].Name = fmt.Sprintf("%s-a%d", first, i+1)
		putSecret(t, ns, enc.Index.Parts[i].Name, map[string][]byte{suppression.ReportPartKey: p})
	}
	index, err := json.Marshal(enc.Index)
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, ns, first, map[string][]byte{suppression.ReportIndexKey: index})
	return []byte(suppression.ReportHeader + strings.Join(lines, "\n") + "\n"), &enc.Index
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSuppressionReport(t *testing.T) {
	ctx := context.Background()
	ns := "drop-report"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	// A small report: one Secret, report.csv, written as is.
	dropList(t, ns, "small", "small-drop-report")
	putSecret(t, ns, "small-drop-report", map[string][]byte{suppression.ReportKey: []byte("ID,Status\nA1,3\nB2,5\n")})
	code, out, errOut := run(t, "suppression", "report", "small", "-n", ns)
	if code != 0 || out != "ID,Status\nA1,3\nB2,5\n" {
		t.Fatalf("small report: exit %d, out %q, err %q", code, out, errOut)
	}

	// A split report is assembled, byte for byte, to stdout and to a file.
	dropList(t, ns, "big", "big-drop-report")
	want, idx := splitReport(t, ns, "big-drop-report", 40_000)
	code, out, errOut = run(t, "suppression", "report", "big", "-n", ns)
	if code != 0 || out != string(want) {
		t.Fatalf("split report to stdout: exit %d, %d bytes (want %d), err %q", code, len(out), len(want), errOut)
	}
	file := filepath.Join(t.TempDir(), "status.csv")
	code, out, errOut = run(t, "suppression", "report", "big", "-n", ns, "-o", file)
	if code != 0 {
		t.Fatalf("split report to a file: exit %d, out %q, err %q", code, out, errOut)
	}
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the file holds %d bytes (want %d): %v", len(got), len(want), err)
	}
	if !strings.Contains(out, "40000 items") {
		t.Errorf("the summary does not count the items: %q", out)
	}
	code, out, _ = run(t, "suppression", "status", "big", "-n", ns)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("40000 items in %d parts", len(idx.Parts))) || !strings.Contains(out, "suppression report big") {
		t.Errorf("status does not say where the report is: %q", out)
	}

	// A corrupted part (valid gzip, other content) and a missing part are refused; the file
	// written before is left as it was and no new one appears.
	second := idx.Parts[1].Name
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: second}, &s); err != nil {
		t.Fatal(err)
	}
	good := s.Data[suppression.ReportPartKey]
	putSecret(t, ns, second, map[string][]byte{suppression.ReportPartKey: gzipped(t, "X1,3\n")})
	other := filepath.Join(t.TempDir(), "corrupt.csv")
	code, out, errOut = run(t, "suppression", "report", "big", "-n", ns, "-o", other)
	if code != 1 || !strings.Contains(errOut, second) || !strings.Contains(errOut, "SHA-256") {
		t.Fatalf("a corrupted part: exit %d, out %q, err %q", code, out, errOut)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a file was written from a corrupted report: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(other)); len(entries) != 0 {
		t.Errorf("temporary files are left: %v", entries)
	}
	code, out, _ = run(t, "suppression", "report", "big", "-n", ns)
	if code != 1 || out != "" {
		t.Errorf("a corrupted report reached stdout: exit %d, %d bytes", code, len(out))
	}
	// A flipped byte inside the gzip data is refused too.
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	putSecret(t, ns, second, map[string][]byte{suppression.ReportPartKey: flipped})
	if code, _, errOut = run(t, "suppression", "report", "big", "-n", ns); code != 1 || !strings.Contains(errOut, second) {
		t.Errorf("a flipped byte: exit %d, err %q", code, errOut)
	}
	if err := env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: second}}); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut = run(t, "suppression", "report", "big", "-n", ns); code != 1 || !strings.Contains(errOut, "missing") {
		t.Errorf("a missing part: exit %d, err %q", code, errOut)
	}

	// No report yet, no such list.
	dropList(t, ns, "fresh", "")
	if code, _, errOut = run(t, "suppression", "report", "fresh", "-n", ns); code != 1 || !strings.Contains(errOut, "no report yet") {
		t.Errorf("a list without report: exit %d, err %q", code, errOut)
	}
	if code, _, _ = run(t, "suppression", "report", "nope", "-n", ns); code != 1 {
		t.Errorf("a missing list: exit %d", code)
	}
}
