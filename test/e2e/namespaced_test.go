package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

// namespacedIdentity is a ServiceAccount with the grants of the namespace-scoped install
// (config/namespaced): the manager's rules bound by RoleBinding in each of namespaces only, and
// the cluster-scope rules of config/namespaced/cluster_scope_role.yaml. It returns a kubeconfig.
func namespacedIdentity(t *testing.T, name string, namespaces ...string) string {
	t.Helper()
	ctx := context.Background()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config/namespaced/cluster_scope_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var clusterScope rbacv1.ClusterRole
	if err := yaml.Unmarshal([]byte(strings.Split(string(raw), "\n---\n")[0]), &clusterScope); err != nil || clusterScope.Kind != "ClusterRole" {
		t.Fatalf("config/namespaced/cluster_scope_role.yaml: want the ClusterRole first: %v", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: name}}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: name}}
	objs := []client.Object{
		sa,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name + "-rules"}, Rules: policyRules(expectedManagerRules)},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name + "-cluster-scope"}, Rules: clusterScope.Rules},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name + "-cluster-scope"}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name + "-cluster-scope"}},
	}
	for _, ns := range namespaces {
		objs = append(objs, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name + "-rules"}})
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("requesting a token for %s: %v", name, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	kc.AuthInfos["manager"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "manager", Namespace: operatorNamespace}
	kc.CurrentContext = "e2e"
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNamespaceScopedManagerStaysInItsNamespaces: a manager started with --watch-namespaces and
// only the namespace-scoped install's grants (RoleBindings in its namespace and the operator's,
// no cluster-wide Secret rights) erases in its namespace and leaves the other alone: the other
// namespace's store, request and identifiers Secret are never touched, and the manager never
// makes a call the API server forbids, so it read no Secret it may not.
func TestNamespaceScopedManagerStaysInItsNamespaces(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	nsIn := newNamespace(t, env.Client, nil)
	nsOut := newNamespace(t, env.Client, nil)
	jane := person{email: "scoped-jane@shop.example", userID: "scoped-jane"}
	shops := map[string]*shop{}
	for _, ns := range []string{nsIn, nsOut} {
		s := sqliteShop(t)
		s.seed(t, jane)
		s.dataStore(t, env.Client, ns, "db", 10*time.Second)
		create(t, env.Client, secret(ns, "jane", jane.ids()))
		create(t, env.Client, deletionRequest(ns, "erase", "jane"))
		shops[ns] = s
	}

	kubeconfig := namespacedIdentity(t, fmt.Sprintf("dsr-e2e-scoped-%d", time.Now().UnixNano()%100000), nsIn, operatorNamespace)
	// The last --kubeconfig wins: the manager runs as the namespace-scoped identity.
	m := startManager(t, "namespaced", managerOptions{extra: []string{"--kubeconfig=" + kubeconfig, "--watch-namespaces=" + nsIn}})

	waitAllCompleted(t, env.Client, nsIn, []string{"erase"}, settle)
	shops[nsIn].assertErased(t, jane)

	// Give the manager time it would need to pick the other namespace up, had it watched it.
	time.Sleep(5 * time.Second)
	out := getDR(t, env.Client, nsOut, "erase")
	if out.Status.Phase != "" || len(out.Status.Conditions) != 0 || out.Status.SubjectDigest != "" {
		t.Errorf("the request outside --watch-namespaces was worked on: %s", describe(out))
	}
	var ds privacyv1alpha1.DataStore
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsOut, Name: "db"}, &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Status.Conditions) != 0 {
		t.Errorf("the DataStore outside --watch-namespaces was checked: %+v", ds.Status.Conditions)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsOut, Name: "jane"}, &corev1.Secret{}); err != nil {
		t.Errorf("the identifiers Secret outside --watch-namespaces: %v", err)
	}
	shops[nsOut].assertIntact(t, jane)
	if !m.Running() {
		t.Fatalf("the manager exited:\n%s", tail(m.logPath, 40))
	}
	// A cache over all namespaces, or a read of a Secret elsewhere, would be refused and logged.
	if log := strings.ToLower(m.Log()); strings.Contains(log, "forbidden") {
		t.Errorf("the namespace-scoped manager made calls the API server forbade:\n%s", tail(m.logPath, 40))
	}
}
