package metricsauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// TestAgainstAPIServer runs the filter as the manager does, against a real kube-apiserver with
// real ServiceAccount tokens and RBAC.
func TestAgainstAPIServer(t *testing.T) {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}

	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "metricsauth-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	token := func(name string) string {
		t.Helper()
		if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		expiry := int64(3600)
		tr, err := cs.CoreV1().ServiceAccounts(ns.Name).CreateToken(ctx, name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	scraperToken, strangerToken := token("scraper"), token("stranger")
	scraper := "system:serviceaccount:" + ns.Name + ":scraper"
	stranger := "system:serviceaccount:" + ns.Name + ":stranger"

	role, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns.Name + "-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{}) })
	binding, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns.Name, Name: "scraper"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	// The RBAC authorizer reads bindings from an informer; wait until it has this one, or the
	// filter could cache a stale denial.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  scraper,
			Groups:                []string{"system:serviceaccounts", "system:authenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed, nil
	}); err != nil {
		t.Fatalf("the binding never took effect: %v", err)
	}

	logs := &logBuffer{}
	serve := func(config *rest.Config) *httptest.Server {
		t.Helper()
		httpClient, err := rest.HTTPClientFor(config)
		if err != nil {
			t.Fatal(err)
		}
		filter, err := WithAuthenticationAndAuthorization(config, httpClient)
		if err != nil {
			t.Fatal(err)
		}
		h, err := filter(logs.logger(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "# metrics for "+r.URL.Path)
		}))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	get := func(srv *httptest.Server, path, authorization string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, strings.TrimSpace(string(body))
	}

	srv := serve(env.Config)
	for _, tc := range []struct {
		name, path, authorization string
		code                      int
		body                      string
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized, "Unauthorized"},
		{"not bearer", "/metrics", "Basic " + scraperToken, http.StatusUnauthorized, "Unauthorized"},
		{"garbage token", "/metrics", "Bearer not-a-token", http.StatusUnauthorized, "Unauthorized"},
		{"garbage token again (cached)", "/metrics", "Bearer not-a-token", http.StatusUnauthorized, "Unauthorized"},
		{"forged token", "/metrics", "Bearer " + scraperToken[:len(scraperToken)-4] + "AAAA", http.StatusUnauthorized, "Unauthorized"},
		{"unbound ServiceAccount", "/metrics", "Bearer " + strangerToken, http.StatusForbidden, "Authorization denied for user " + stranger},
		{"bound ServiceAccount", "/metrics", "Bearer " + scraperToken, http.StatusOK, "# metrics for /metrics"},
		{"bound ServiceAccount again (cached)", "/metrics", "bearer  " + scraperToken, http.StatusOK, "# metrics for /metrics"},
		{"bound ServiceAccount, other path", "/other", "Bearer " + scraperToken, http.StatusForbidden, "Authorization denied for user " + scraper},
	} {
		if code, body := get(srv, tc.path, tc.authorization); code != tc.code || body != tc.body {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, code, body, tc.code, tc.body)
		}
	}

	// A manager whose own credentials may not create TokenReviews (here: the stranger's) fails
	// closed with 500, and logs why.
	weak := rest.AnonymousClientConfig(env.Config)
	weak.BearerToken = strangerToken
	if code, body := get(serve(weak), "/metrics", "Bearer "+scraperToken); code != http.StatusInternalServerError || body != "Authentication failed" {
		t.Errorf("manager without TokenReview permission: got %d %q, want 500 %q", code, body, "Authentication failed")
	}

	out := logs.String()
	if !strings.Contains(out, "tokenreviews.authentication.k8s.io is forbidden") {
		t.Errorf("the failed TokenReview was not logged:\n%s", out)
	}
	for name, tok := range map[string]string{"scraper": scraperToken, "stranger": strangerToken} {
		// Also a fragment, in case something logged part of a token.
		if strings.Contains(out, tok) || strings.Contains(out, tok[len(tok)/2:len(tok)/2+20]) {
			t.Errorf("the %s's token appears in the filter's logs:\n%s", name, out)
		}
	}
}

// TestNoAPIServerDependency keeps the point of this package: the manager must not link
// k8s.io/apiserver and what comes with it.
func TestNoAPIServerDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/dsr-operator/dsr-operator/internal/metricsauth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list printed too little to be the dependency list:\n%s", out)
	}
	for _, dep := range deps {
		for _, banned := range []string{"k8s.io/apiserver", "github.com/google/cel-go", "google.golang.org/grpc", "go.opentelemetry.io"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("metricsauth depends on %s", dep)
			}
		}
	}
}
