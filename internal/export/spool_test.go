package export

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// hostileRecords are records with every kind of value the stores give and content that must stay
// escaped: markup, formulas, control characters, a record larger than a spool chunk.
func hostileRecords() []connector.Record {
	return []connector.Record{
		{Location: "public.customers", Data: map[string]any{"id": int64(4711), "email": "jane@example.com",
			"name": "<script>alert('x')</script>", "ratio": 0.1, "big": int64(1) << 60, "active": true, "gone": nil}},
		{Location: "public.orders", Data: map[string]any{"id": 1, "total": "=HYPERLINK(\"http://evil.example\")",
			"meta": map[string]any{"b": []any{1.5, "x&y"}, "a": "\x1b[31m"}}},
		{Location: "public.orders", Data: map[string]any{"id": 2, "total": "19.99", "note": strings.Repeat("long ", spoolChunk/2)}},
		{Location: "session:{userId}:*", Key: "session:42:a", Data: map[string]any{"ua": "tab\there\r\nnew line \u2028"}},
		{Location: "session:{userId}:*", Data: nil},
		{Location: "../../etc/passwd", Data: map[string]any{"x": "\x00\x7f\u0085"}},
	}
}

func spoolSpec() *privacyv1alpha1.DataStoreSpec {
	return &privacyv1alpha1.DataStoreSpec{Type: "postgres", Description: "Customer database", Purposes: []string{"Orders"}}
}

func spooledInputs(t testing.TB, sp *Spool, recs []connector.Record) []StoreInput {
	t.Helper()
	st := sp.Store()
	if err := st.AddAll(recs); err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	other := sp.Store()
	if err := other.Finish(); err != nil {
		t.Fatal(err)
	}
	return []StoreInput{{Kind: "DataStore", Name: "shop-db", Spec: spoolSpec(), Spooled: st},
		{Kind: "ClusterDataStore", Name: "empty", Spec: spoolSpec(), Spooled: other}}
}

// TestSpooledExportRendersAsInMemory: a document whose records are spooled renders to the same
// bytes in every format as one built from the records in memory, and the spool leaves no file.
func TestSpooledExportRendersAsInMemory(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	req := Request{Namespace: "shop", Name: "copy-jane", UID: "u1"}
	mem := BuildWithContext(fullContext(), req, "GDPR", "sha256:00", at, []StoreInput{
		{Kind: "DataStore", Name: "shop-db", Spec: spoolSpec(), Data: &connector.Collection{Records: hostileRecords()}},
		{Kind: "ClusterDataStore", Name: "empty", Spec: spoolSpec(), Data: &connector.Collection{}}})
	sp := NewSpool(dir)
	defer sp.Close()
	spooled := BuildWithContext(fullContext(), req, "GDPR", "sha256:00", at, spooledInputs(t, sp, hostileRecords()))
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the spool left %d files in its directory; want them unlinked", len(entries))
	}
	if mem.RecordCount != spooled.RecordCount || mem.RecordCount != 6 {
		t.Fatalf("record counts %d and %d; want 6", mem.RecordCount, spooled.RecordCount)
	}
	var whole bytes.Buffer
	enc := json.NewEncoder(&whole)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(mem); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []*Document{mem, spooled} {
		var got bytes.Buffer
		if err := WriteJSON(&got, doc); err != nil {
			t.Fatal(err)
		}
		if got.String() != whole.String() {
			t.Fatalf("streamed JSON differs from encoding/json's:\n%s\nwant:\n%s", got.String(), whole.String())
		}
	}
	for name, render := range map[string]func(*Document) ([]byte, error){"csv": RenderCSV, "html": RenderHTML} {
		want, err := render(mem)
		if err != nil {
			t.Fatal(err)
		}
		got, err := render(spooled)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the spooled document renders differently from the one in memory", name)
		}
	}
	empty := Build(req, "GDPR", "sha256:00", at, nil)
	whole.Reset()
	if err := enc.Encode(empty); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := WriteJSON(&got, empty); err != nil || got.String() != whole.String() {
		t.Fatalf("a document without stores: %v\n%s\nwant:\n%s", err, got.String(), whole.String())
	}
}

// TestSpoolIsEncrypted: nothing of a record reaches the disk in clear.
func TestSpoolIsEncrypted(t *testing.T) {
	sp := NewSpool(t.TempDir())
	defer sp.Close()
	st := sp.Store()
	for i := range 1000 {
		if err := st.Add(connector.Record{Location: "t", Data: map[string]any{"email": fmt.Sprintf("jane-%d@example.com", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	for _, f := range sp.files {
		raw, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) == 0 || bytes.Contains(raw, []byte("example.com")) || bytes.Contains(raw, []byte("email")) {
			t.Fatalf("the spool file (%d bytes) holds a record in clear", len(raw))
		}
	}
}

// TestStreamingRenderersHoldBoundedMemory renders an export of about 60 MB in the three formats
// from a spool and samples the heap meanwhile: it must stay far below the export's size.
func TestStreamingRenderersHoldBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("renders about 60 MB")
	}
	const records = 40000
	note := strings.Repeat("0123456789abcdef", 32) // 512 characters, as in the benchmark
	sp := NewSpool(t.TempDir())
	defer sp.Close()
	st := sp.Store()
	for i := range records {
		if err := st.Add(connector.Record{Location: "public.notes", Data: map[string]any{
			"id": int64(i), "email": "jane@example.org", "written": "2020-01-01", "note": note}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	doc := Build(Request{Namespace: "ns", Name: "big", UID: "u"}, "GDPR", "sha256:00", time.Now(),
		[]StoreInput{{Kind: "DataStore", Name: "pg", Spec: spoolSpec(), Spooled: st}})

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	var total countingWriter
	for _, write := range []func(io.Writer, *Document) error{WriteJSON, WriteCSV, WriteHTML} {
		if err := write(&total, doc); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-sampled
	grew := int64(peak.Load()) - int64(base)
	var spooled int64
	for _, f := range sp.files {
		if fi, err := f.Stat(); err == nil {
			spooled += fi.Size()
		}
	}
	t.Logf("rendered %.1f MiB from a spool of %.1f MiB; the heap grew by at most %.1f MiB",
		float64(total)/(1<<20), float64(spooled)/(1<<20), float64(grew)/(1<<20))
	if total < 50<<20 {
		t.Fatalf("rendered only %d bytes", total)
	}
	// Garbage between collections is most of it: the live data is a few chunks and one record.
	if grew > 24<<20 {
		t.Fatalf("the heap grew by %.1f MiB while rendering %.1f MiB; want it bounded", float64(grew)/(1<<20), float64(total)/(1<<20))
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// TestEncodeFilesStopsOnceTooLarge: an export far too large for a Secret is refused without being
// rendered whole: the refusal says it stopped, and the heap stays small.
func TestEncodeFilesStopsOnceTooLarge(t *testing.T) {
	sp := NewSpool(t.TempDir())
	defer sp.Close()
	st := sp.Store()
	rnd := mathrand.New(mathrand.NewPCG(1, 2))
	raw := make([]byte, 256)
	for i := range 20000 {
		for j := range raw {
			raw[j] = byte(rnd.Uint32())
		}
		// Hexadecimal noise: gzip cannot shrink it below half.
		if err := st.Add(connector.Record{Location: "public.notes", Data: map[string]any{"id": int64(i), "note": hex.EncodeToString(raw)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	doc := Build(Request{Namespace: "ns", Name: "big", UID: "u"}, "GDPR", "sha256:00", time.Now(),
		[]StoreInput{{Kind: "DataStore", Name: "pg", Spec: spoolSpec(), Spooled: st}})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := EncodeFiles(doc, []privacyv1alpha1.ExportFormat{"json", "csv", "html"}, 0)
	runtime.ReadMemStats(&after)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !tl.Stopped || tl.Size <= MaxBytes || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("want a TooLargeError that stopped early, got %v", err)
	}
	// Rendered whole, the JSON alone would be over 10 MiB; what was allocated stays a few limits.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40<<20 {
		t.Errorf("refusing the export allocated %.1f MiB", float64(alloc)/(1<<20))
	}
}
