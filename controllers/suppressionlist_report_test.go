package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// These tests write DROP reports through a fake API client: no cluster.

func reportTestStore(t *testing.T) (*reportStore, client.Client) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := privacyv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	list := &privacyv1alpha1.SuppressionList{ObjectMeta: metav1.ObjectMeta{Namespace: "brokers", Name: "drop", UID: "list-uid"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(list).Build()
	return &reportStore{client: c, reader: c, scheme: scheme, list: list, maxBytes: suppression.MaxChunkBytes}, c
}

// reportLines makes n report lines with IDs of the length and randomness DROP's have (so that
// compression is not flattered), sorted, and the CSV they make.
func reportLines(n int) ([]string, []byte) {
	lines := make([]string, n)
	for i := range lines {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		lines[i] = fmt.Sprintf("%s-%s,%d", hex.EncodeToString(sum[:8]), hex.EncodeToString(sum[8:12]), []int{3, 5, 2, 4}[i%4])
	}
	sort.Strings(lines)
	var b bytes.Buffer
	b.WriteString("ID,Status\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return lines, b.Bytes()
}

// readReport reassembles the report the way kubectl dsr suppression report does, checking every
// stored Secret's size on the way; it returns the CSV and the part names.
func readReport(t *testing.T, c client.Client, name string) ([]byte, []string) {
	t.Helper()
	ctx := context.Background()
	get := func(name string) *corev1.Secret {
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: "brokers", Name: name}, &s); err != nil {
			t.Fatalf("part %s: %v", name, err)
		}
		encoded, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		if len(encoded) >= 1<<20 {
			t.Fatalf("secret %s is %d bytes as JSON, not under 1 MiB", name, len(encoded))
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != "list-uid" {
			t.Fatalf("secret %s is not owned by the list: %+v", name, s.OwnerReferences)
		}
		return &s
	}
	first := get(name)
	if csv, ok := first.Data[suppression.ReportKey]; ok {
		return csv, nil
	}
	idx, err := suppression.ParseReportIndex(first.Data[suppression.ReportIndexKey])
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var names []string
	for i, p := range idx.Parts {
		names = append(names, p.Name)
		if err := suppression.DecodeReportPart(get(p.Name).Data[suppression.ReportPartKey], p, i == 0, &out); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(out.Bytes())
	if hex.EncodeToString(sum[:]) != idx.SHA256 || int64(out.Len()) != idx.Bytes {
		t.Fatalf("the whole report does not match the index")
	}
	return out.Bytes(), names
}

func secretExists(t *testing.T, c client.Client, name string) bool {
	t.Helper()
	err := c.Get(context.Background(), client.ObjectKey{Namespace: "brokers", Name: name}, &corev1.Secret{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestDropReportOfAMillionItemsInParts(t *testing.T) {
	ctx := context.Background()
	store, c := reportTestStore(t)
	lines, want := reportLines(1_000_000)
	name, err := store.write(ctx, lines)
	if err != nil {
		t.Fatal(err)
	}
	got, parts := readReport(t, c, name)
	if len(parts) < 2 {
		t.Fatalf("a %d-byte report was written in %d parts", len(want), len(parts))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the reassembled report (%d bytes) differs from the one written (%d bytes)", len(got), len(want))
	}
	t.Logf("1,000,000 items: %d bytes of CSV in %d parts", len(want), len(parts))
	if secretExists(t, c, reportPartName("drop", "a", len(parts)+1)) {
		t.Errorf("a part past the last one exists")
	}

	// A smaller report goes to the other slot; every part of the first is deleted.
	lines, want = reportLines(100_000)
	if _, err := store.write(ctx, lines); err != nil {
		t.Fatal(err)
	}
	got, smaller := readReport(t, c, name)
	if !bytes.Equal(got, want) || len(smaller) == 0 || len(smaller) >= len(parts) {
		t.Fatalf("the smaller report: equal %v, %d parts (was %d)", bytes.Equal(got, want), len(smaller), len(parts))
	}
	if smaller[0] != reportPartName("drop", "b", 1) {
		t.Errorf("the second report was written to %s, not to the other slot", smaller[0])
	}
	for _, p := range parts {
		if secretExists(t, c, p) {
			t.Errorf("part %s of the earlier report is left", p)
		}
	}

	// A report that fits is one Secret with report.csv, as before reports were split.
	lines, want = reportLines(3)
	if _, err := store.write(ctx, lines); err != nil {
		t.Fatal(err)
	}
	got, none := readReport(t, c, name)
	if !bytes.Equal(got, want) || none != nil {
		t.Fatalf("the small report: %q, parts %v", got, none)
	}
	for _, p := range smaller {
		if secretExists(t, c, p) {
			t.Errorf("part %s is left after the report shrank into one Secret", p)
		}
	}
}

// A sweep that stopped after writing some parts, before its index, leaves parts no index names:
// the next complete write reuses or deletes them.
func TestDropReportCleansPartsOfAnInterruptedWrite(t *testing.T) {
	ctx := context.Background()
	store, c := reportTestStore(t)
	store.maxBytes = 128 << 10
	lines, _ := reportLines(30_000)
	if _, err := store.write(ctx, lines); err != nil {
		t.Fatal(err)
	}
	_, parts := readReport(t, c, reportIndexName("drop"))
	// Orphans in the other slot, as an interrupted sweep leaves them.
	for i := 1; i <= len(parts)+2; i++ {
		if err := store.put(ctx, reportPartName("drop", "b", i), map[string][]byte{suppression.ReportPartKey: []byte("partial")}); err != nil {
			t.Fatal(err)
		}
	}
	lines, want := reportLines(12_000)
	if _, err := store.write(ctx, lines); err != nil {
		t.Fatal(err)
	}
	got, now := readReport(t, c, reportIndexName("drop"))
	if !bytes.Equal(got, want) || len(now) == 0 || len(now) >= len(parts)+2 {
		t.Fatalf("the report after an interrupted write: equal %v, %d parts", bytes.Equal(got, want), len(now))
	}
	for i := len(now) + 1; i <= len(parts)+2; i++ {
		if secretExists(t, c, reportPartName("drop", "b", i)) {
			t.Errorf("orphan part b%d is left", i)
		}
	}
	for _, p := range parts {
		if secretExists(t, c, p) {
			t.Errorf("part %s of the earlier report is left", p)
		}
	}
}

// A Secret of a part's name that the list does not own is neither overwritten nor deleted.
func TestDropReportLeavesForeignSecrets(t *testing.T) {
	ctx := context.Background()
	store, c := reportTestStore(t)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "brokers", Name: reportPartName("drop", "a", 1)},
		Data: map[string][]byte{"k": []byte("v")}}
	if err := c.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	store.maxBytes = 128 << 10
	lines, _ := reportLines(30_000)
	if _, err := store.write(ctx, lines); err == nil {
		t.Fatal("a report was written over a Secret the list does not own")
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKeyFromObject(foreign), &s); err != nil || string(s.Data["k"]) != "v" {
		t.Fatalf("the foreign Secret changed: %v %v", err, s.Data)
	}
}
