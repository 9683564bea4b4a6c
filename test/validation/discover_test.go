package validation

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/discover"
	"github.com/dsr-operator/dsr-operator/internal/discover/discovertest"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// TestDiscoverOutputIsAccepted applies what kubectl dsr discover prints for the shop schema, as
// it is, to the API server, on each engine; the connector's own validation accepts it too.
func TestDiscoverOutputIsAccepted(t *testing.T) {
	t.Cleanup(teststore.CloseShared)
	for _, typ := range discovertest.Engines {
		t.Run(string(typ), func(t *testing.T) {
			shop := discovertest.NewShop(t, typ)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := discover.Discover(ctx, typ, shop.DSN, discover.Options{})
			if err != nil {
				t.Fatalf("discover: %v", err)
			}
			namespace := createNamespace(t, "discover")
			var out bytes.Buffer
			err = discover.Render(&out, p, discover.Header{Name: "shop", Namespace: namespace, SecretName: "shop-db", SecretKey: "dsn",
				Known: []string{discover.IdentifierEmail}})
			if err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			if err := yaml.UnmarshalStrict(out.Bytes(), &obj.Object); err != nil {
				t.Fatalf("the proposal is not YAML: %v\n%s", err, out.String())
			}
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("the API server refuses the proposal: %v\n%s", err, out.String())
			}
			var stored privacyv1alpha1.DataStore
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), &stored); err != nil {
				t.Fatal(err)
			}
			if len(stored.Spec.Tables) != len(p.Listings) || !strings.Contains(out.String(), "provides:") {
				t.Errorf("stored %d tables of %d proposed", len(stored.Spec.Tables), len(p.Listings))
			}
			if err := sqlstore.NewProvider(shop.Dialect, sqlstore.Options{}).ValidateSpec(&stored.Spec); err != nil {
				t.Errorf("the connector refuses the stored proposal: %v", err)
			}
		})
	}
}
