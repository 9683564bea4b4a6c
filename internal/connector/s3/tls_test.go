package s3_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/egress"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// An https endpoint with a private CA: the CA bundle of caSecretRef is trusted, and only it.
func TestHTTPSWithPrivateCA(t *testing.T) {
	ctx := ctxT(t)
	srv, err := teststore.StartS3TLS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	mc := root(t, srv)
	b := bucket(t, srv, false, false)
	put(t, mc, b, "users/42/a", "x")
	put(t, mc, b, "users/43/a", "bystander")
	p, err := connector.ProviderFor(privacyv1alpha1.StoreTypeS3)
	if err != nil {
		t.Fatal(err)
	}
	s := spec(srv, del(b, "users/{userId}/"))
	s.Connection.AllowInsecureHTTP = false
	if !strings.HasPrefix(s.Connection.URL, "https://") {
		t.Fatalf("endpoint %q is not https", s.Connection.URL)
	}

	// Without the CA the system roots do not trust the server.
	untrusted, err := p.NewClient(ctx, connector.Config{Spec: s, Secret: []byte(srv.Secret())})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	if _, err := untrusted.Check(ctx); err == nil || connector.KindOf(err) != connector.KindUnavailable {
		t.Fatalf("check without the CA: %v; want an Unavailable error", err)
	}

	c, err := p.NewClient(ctx, connector.Config{Spec: s, Secret: []byte(srv.Secret()), CABundle: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Check(ctx); err != nil {
		t.Fatalf("check with the CA: %v", err)
	}
	if res, err := c.Erase(ctx, subject(map[string]string{"userId": "42"})); err != nil || res.Erased != 1 {
		t.Fatalf("erase over https = %+v, %v", res, err)
	}
	if got := versions(t, mc, b); !slices.Equal(got, []string{"users/43/a"}) {
		t.Fatalf("left %q", got)
	}
}

func TestCheckReportsMissingBucketAndBadCredentials(t *testing.T) {
	srv := shared(t)
	b := bucket(t, srv, false, false)
	missing := newClient(t, srv, del("no-such-bucket-here", "users/{userId}/"))
	if _, err := missing.Check(context.Background()); connector.KindOf(err) != connector.KindMapping || !strings.Contains(connector.Summary(err), "no-such-bucket-here") {
		t.Fatalf("check of a missing bucket: %v", err)
	}
	p, _ := connector.ProviderFor(privacyv1alpha1.StoreTypeS3)
	bad, err := p.NewClient(context.Background(), connector.Config{Spec: spec(srv, del(b, "users/{userId}/")), Secret: []byte(srv.AccessKey + ":wrong-secret")})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Check(context.Background())
	if connector.KindOf(err) != connector.KindAuth {
		t.Fatalf("check with a wrong secret: %v; want AuthFailed", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("the error quotes the secret: %v", err)
	}
	ok := newClient(t, srv, del(b, "users/{userId}/"))
	if res, err := ok.Check(context.Background()); err != nil || len(res.Warnings) != 0 {
		t.Fatalf("check of a good store = %+v, %v", res, err)
	}
}

// The egress policy is checked on every connection: a denied endpoint gets no request, and the
// store fails with EgressDenied.
func TestEgressDeniedEndpointGetsNoRequest(t *testing.T) {
	srv := shared(t)
	b := bucket(t, srv, false, false)
	p, _ := connector.ProviderFor(privacyv1alpha1.StoreTypeS3)
	policy := &egress.Policy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	c, err := p.NewClient(context.Background(), connector.Config{Spec: spec(srv, del(b, "users/{userId}/")), Secret: []byte(srv.Secret()), Egress: policy})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Check(context.Background()); connector.KindOf(err) != connector.KindEgressDenied {
		t.Fatalf("check through a policy denying the endpoint: %v; want EgressDenied", err)
	}
	_, err = c.Erase(context.Background(), subject(map[string]string{"userId": "u-4711"}))
	if connector.KindOf(err) != connector.KindEgressDenied {
		t.Fatalf("erase through a policy denying the endpoint: %v; want EgressDenied", err)
	}
	if strings.Contains(err.Error(), "4711") {
		t.Errorf("the error holds the request URL and so the identifier: %v", err)
	}
}
