package httpstore_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/httpstore"
	"github.com/dsr-operator/dsr-operator/internal/egress"
	"github.com/dsr-operator/dsr-operator/internal/export"
)

// countingServer is a test server on addr that counts the connections it receives.
func countingServer(t *testing.T, addr string, tls bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	srv.Listener = l
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestPlainHTTPRefusedWithoutOptIn(t *testing.T) {
	srv, conns := countingServer(t, "127.0.0.1:0", false)
	cfg := config(srv.URL)
	cfg.Spec.Connection.AllowInsecureHTTP = false
	_, err := httpstore.NewProvider(httpstore.Options{}).NewClient(t.Context(), cfg)
	wantKind(t, err, connector.KindEgressDenied)
	if !strings.Contains(err.Error(), "allowInsecureHTTP") {
		t.Errorf("the error does not say how to opt in: %v", err)
	}
	// The global opt-in works too.
	cfg.Egress = &egress.Policy{AllowInsecureHTTP: true}
	c := newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
	if _, err := c.Check(t.Context()); err == nil || conns.Load() != 1 {
		t.Fatalf("opted-in check: %v, %d connections", err, conns.Load())
	}
}

func TestEgressDeniedAddressReceivesNoConnection(t *testing.T) {
	srv, conns := countingServer(t, "127.0.0.2:0", true)
	cfg := config(srv.URL)
	cfg.CABundle = certPEM(srv)
	cfg.Egress = &egress.Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	c := newClient(t, httpstore.NewProvider(httpstore.Options{}), cfg)
	_, err := c.Check(t.Context())
	wantKind(t, err, connector.KindEgressDenied)
	if !strings.Contains(err.Error(), "127.0.0.2/32") {
		t.Errorf("the error does not name the rule: %v", err)
	}
	if _, err := c.Collect(t.Context(), req("r1")); connector.KindOf(err) != connector.KindEgressDenied {
		t.Errorf("collect: %v", err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the denied server received %d connections", n)
	}
}

// TestCollectCappedAtExportSize: a collect answer larger than an export can hold is refused at
// the default limit, not buffered up to 64 MiB.
func TestCollectCappedAtExportSize(t *testing.T) {
	if httpstore.DefaultMaxCollectBytes != export.MaxBytes {
		t.Fatalf("default collect limit %d, want export.MaxBytes %d", httpstore.DefaultMaxCollectBytes, export.MaxBytes)
	}
	pad := strings.Repeat("x", export.MaxBytes)
	c := serve(t, answerJSON(200, `{"protocolVersion":"v1","records":[{"location":"l","data":{"pad":"`+pad+`"}}]}`))
	_, err := c.Collect(t.Context(), req("r"))
	wantKind(t, err, connector.KindRejected)
	if !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("%v", err)
	}
}
