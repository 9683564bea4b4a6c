package httpstore

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/export"
)

// countingTransport counts the bytes the client reads of each answer body.
type countingTransport struct {
	next http.RoundTripper
	read atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// endlessCollect answers a collect with a chunked stream of records, offered bytes long, and
// counts what it managed to write.
func endlessCollect(offered int64, written *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		n, _ := io.WriteString(w, `{"protocolVersion":"v1","records":[`)
		written.Add(int64(n))
		record := `{"location":"crm.contacts","key":"k","data":{"pad":"` + strings.Repeat("x", 4000) + `"}},`
		for written.Load() < offered {
			n, err := io.WriteString(w, record)
			written.Add(int64(n))
			if err != nil {
				return // the client hung up
			}
		}
		_, _ = io.WriteString(w, `{"location":"crm.contacts","data":{}}]}`)
	}
}

func streamingClient(t *testing.T, url string, opts Options) (*Client, *countingTransport) {
	t.Helper()
	cfg := connector.Config{Name: "DataStore shop/crm", Spec: &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeHTTP,
		Connection: privacyv1alpha1.Connection{URL: url, AllowInsecureHTTP: true}}}
	cc, err := NewProvider(opts).NewClient(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := cc.(*Client)
	t.Cleanup(func() { _ = c.Close() })
	counting := &countingTransport{next: c.http.Transport}
	c.http.Transport = counting
	return c, counting
}

func collectRequest() connector.Request {
	return connector.Request{ID: "r-stream", Identifiers: connector.Identifiers{"email": "alice@example.com"}}
}

// TestOverLimitCollectIsRefusedWithoutReadingIt: a service that answers a collect with 64 MiB of
// records (no Content-Length) is refused at the default limit, what an export may hold, and the
// client reads no more than that limit plus the small drain that lets a connection be reused:
// the rest of the body is never read, let alone held.
func TestOverLimitCollectIsRefusedWithoutReadingIt(t *testing.T) {
	const offered = 64 << 20
	var written atomic.Int64
	srv := httptest.NewServer(endlessCollect(offered, &written))
	t.Cleanup(srv.Close)
	c, counting := streamingClient(t, srv.URL, Options{})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := c.Collect(t.Context(), collectRequest())
	runtime.ReadMemStats(&after)

	if connector.KindOf(err) != connector.KindRejected || !strings.Contains(fmt.Sprint(err), "exceeds the limit of 1008 KiB") {
		t.Fatalf("want a refusal at the export limit (%d bytes), got %v", export.MaxBytes, err)
	}
	limit := int64(DefaultMaxCollectBytes)
	if read := counting.read.Load(); read > limit+1+maxDrainBytes {
		t.Errorf("the client read %d bytes of the answer, more than the limit %d plus the drain %d", read, limit, maxDrainBytes)
	}
	// The server offered 64 MiB; what the client allocated while reading is a few times the limit
	// at most (decoded records), never the offer.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("the collect allocated %d bytes for an answer refused at %d", alloc, limit)
	}
}

// TestCollectJustUnderTheLimitIsRead: streaming changes nothing for an answer that fits: every
// record arrives, and an answer of exactly the limit is accepted while one byte more is not.
func TestCollectJustUnderTheLimitIsRead(t *testing.T) {
	body := func(n int) string {
		head, tail := `{"protocolVersion":"v1","records":[{"location":"l","data":{"pad":"`, `"}}]}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	for _, tc := range []struct {
		size int
		ok   bool
	}{{8 << 10, true}, {8<<10 + 1, false}} {
		answer := body(tc.size)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			// No Content-Length: the stream itself must be measured.
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, answer)
		}))
		c, _ := streamingClient(t, srv.URL, Options{MaxCollectBytes: 8 << 10})
		col, err := c.Collect(t.Context(), collectRequest())
		srv.Close()
		if tc.ok && (err != nil || len(col.Records) != 1) {
			t.Errorf("%d bytes: %v", tc.size, err)
		}
		if !tc.ok && (connector.KindOf(err) != connector.KindRejected || !strings.Contains(err.Error(), "exceeds the limit of 8 KiB")) {
			t.Errorf("%d bytes: want refused, got %v", tc.size, err)
		}
	}
}
