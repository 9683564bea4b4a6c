package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/discover/discovertest"
)

func TestDiscoverFromASecret(t *testing.T) {
	shop := discovertest.NewShop(t, privacyv1alpha1.StoreTypeSQLite)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "filing", Name: "shop-db"},
		Data: map[string][]byte{"dsn": []byte(shop.DSN), "other": []byte("x")}}
	if err := env.Client.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "discover", "--secret", "filing/shop-db", "--key", "dsn")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, shop.DSN) || strings.Contains(errOut, shop.DSN) {
		t.Errorf("the DSN is printed:\n%s", out)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.UnmarshalStrict([]byte(out), &obj.Object); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	if obj.GetNamespace() != "filing" || obj.GetName() != "shop-db" || !strings.Contains(out, "secretRef: {name: shop-db, key: dsn}") {
		t.Errorf("the proposal does not name the Secret's namespace and name:\n%s", out)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Errorf("the API server refuses the proposal: %v", err)
	}
}

func TestDiscoverFromAFile(t *testing.T) {
	shop := discovertest.NewShop(t, privacyv1alpha1.StoreTypeSQLite)
	file := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(file, []byte(shop.DSN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runOffline(t, "discover", "--dsn-file", file, "--name", "shop", "--identifiers", "email,phone")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "- {column: phone, identifier: phone}") || !strings.Contains(out, "name: shop\n") ||
		!strings.Contains(out, "secretRef: {name: shop-db, key: dsn}") {
		t.Errorf("unexpected proposal:\n%s", out)
	}
}

func TestDiscoverRefusals(t *testing.T) {
	const password = "s3cret-pw"
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no source", []string{"discover"}, 2, "exactly one of --secret, --dsn-file and --dsn"},
		{"two sources", []string{"discover", "--dsn", "a.db", "--dsn-file", "b"}, 2, "exactly one of"},
		{"unknown identifier", []string{"discover", "--dsn", "a.db", "--identifiers", "ssn"}, 2, "--identifiers takes"},
		{"unknown form", []string{"discover", "--dsn", "whatever"}, 2, "--type"},
		{"bad type", []string{"discover", "--dsn", "a.db", "--type", "redis"}, 2, "--type must be"},
		{"unreachable", []string{"discover", "--dsn", "postgres://dsr:" + password + "@127.0.0.1:1/shop?sslmode=disable&connect_timeout=2"}, 1, "Unavailable"},
		{"missing sqlite file", []string{"discover", "--type", "sqlite", "--dsn", "/nonexistent/" + password + ".db"}, 1, "discover:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runOffline(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.code, c.want)
			}
			if strings.Contains(out+errOut, password) {
				t.Errorf("the DSN's password is printed: %q", out+errOut)
			}
		})
	}
	code, _, errOut := run(t, "discover", "--secret", "filing/nope")
	if code != 1 || !strings.Contains(errOut, `no Secret "nope" in namespace "filing"`) {
		t.Errorf("a missing Secret: exit %d, %q", code, errOut)
	}
}
