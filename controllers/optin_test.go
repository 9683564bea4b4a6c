package controllers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

// asShippedRole returns a client acting as a user bound, in namespace ns only, to the shipped
// ClusterRole in config/rbac/file.
func asShippedRole(t *testing.T, ns, file string) client.Client {
	t.Helper()
	ctx := context.Background()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config/rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	role.Name = "optin-test-" + role.Name
	if err := env.Client.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	user := "optin-" + strings.TrimSuffix(file, ".yaml")
	if err := env.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnlabelledSecretsAreNeitherSentNorDeleted: a DataStore naming a Secret that did not opt in as
// a connection Secret sends nothing to its server, and a request naming a Secret that is not
// marked as identifiers is refused and the Secret survives its request's whole life.
func TestUnlabelledSecretsAreNeitherSentNorDeleted(t *testing.T) {
	startOperator(t)
	ns := newNamespace(t, nil)
	ctx := context.Background()

	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	// An application's Secret: no privacy.dsr.dev/secret-type label.
	appSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-token"}, StringData: map[string]string{"token": "app-s3cret"}}
	create(t, appSecret)
	ds := &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "borrower"},
		Spec: privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeHTTP, Connection: privacyv1alpha1.Connection{
			URL: srv.URL, SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "app-token", Key: "token"}}}}
	// The shipped editor may create the DataStore but not read the Secret it names.
	editor := asShippedRole(t, ns, "privacy_editor_role.yaml")
	if err := editor.Get(ctx, keyOf(ns, "app-token"), &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the editor can read Secrets: %v", err)
	}
	if err := editor.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	waitStoreReady(t, ds, func() []metav1.Condition { return ds.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonSecretNotOptedIn)
	if c := condition(ds.Status.Conditions, privacyv1alpha1.ConditionReady); !strings.Contains(c, "kubectl label secret app-token") || strings.Contains(c, "app-s3cret") {
		t.Errorf("Ready: %s", c)
	}

	// A request naming the application's Secret as identifiers, with no re-verification period.
	startSQLiteFixture(t).dataStore(t, ns, "db")
	requester := asShippedRole(t, ns, "privacy_requester_role.yaml")
	if err := requester.Create(ctx, deletionRequest(ns, "grab", "app-token", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyPeriod: &metav1.Duration{}}
	})); err != nil {
		t.Fatal(err)
	}
	// The legitimate flow, as the shipped portal role: a labelled identifiers Secret is accepted.
	portal := asShippedRole(t, ns, "privacy_portal_role.yaml")
	if err := portal.Create(ctx, secret(ns, "jane", subjectIDs)); err != nil {
		t.Fatal(err)
	}
	if err := portal.Create(ctx, deletionRequest(ns, "legit", "jane")); err != nil {
		t.Fatal(err)
	}
	waitDR(t, ns, "legit", privacyv1alpha1.ConditionAccepted, metav1.ConditionTrue, privacyv1alpha1.ReasonAccepted, settle)
	waitDR(t, ns, "grab", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonSecretNotOptedIn, settle)
	time.Sleep(2 * time.Second)
	if err := env.Client.Get(ctx, keyOf(ns, "app-token"), &corev1.Secret{}); err != nil {
		t.Errorf("the application's Secret was touched: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the server got %d requests with a Secret that did not opt in", n)
	}
}
