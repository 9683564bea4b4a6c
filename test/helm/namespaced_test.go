package helm

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// clusterScopeResources is all a namespace-scoped operator may still do cluster-wide: read
// namespaces (for ClusterDataStores' selectors), work on ClusterDataStores, and check the tokens
// of metrics scrapers (TokenReviews and SubjectAccessReviews are cluster-scoped APIs).
var clusterScopeResources = []string{"namespaces", "clusterdatastores", "clusterdatastores/status", "tokenreviews", "subjectaccessreviews"}

func ensureNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// grantsOn lists the resources rules grant anything on.
func grantsOn(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.Resources...)
	}
	return out
}

// assertNoClusterWideManagerRules: every ClusterRole bound cluster-wide to the manager's
// ServiceAccount grants nothing beyond clusterScopeResources; in particular nothing on Secrets,
// ConfigMaps or requests.
func assertNoClusterWideManagerRules(t *testing.T, objs []*unstructured.Unstructured, serviceAccount string) {
	t.Helper()
	clusterRoles := map[string]*rbacv1.ClusterRole{}
	for _, o := range kinds(objs, "ClusterRole") {
		clusterRoles[o.GetName()] = as[rbacv1.ClusterRole](t, o)
	}
	bound := 0
	for _, o := range kinds(objs, "ClusterRoleBinding") {
		b := as[rbacv1.ClusterRoleBinding](t, o)
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == serviceAccount }) {
			continue
		}
		bound++
		role := clusterRoles[b.RoleRef.Name]
		if role == nil {
			t.Errorf("ClusterRoleBinding %s binds ClusterRole %s, which is not rendered", b.Name, b.RoleRef.Name)
			continue
		}
		for _, res := range grantsOn(role.Rules) {
			if !slices.Contains(clusterScopeResources, res) {
				t.Errorf("ClusterRole %s, bound cluster-wide to the manager, grants %s", role.Name, res)
			}
		}
	}
	if bound == 0 {
		t.Error("no ClusterRoleBinding to the manager: ClusterDataStores would go unserved")
	}
}

// assertManagerRoleBindings: each namespace in want has a RoleBinding giving the manager's
// ServiceAccount rules on Secrets and requests there, and no other namespace has one.
func assertManagerRoleBindings(t *testing.T, objs []*unstructured.Unstructured, serviceAccount string, want []string, rulesOf func(rbacv1.RoleRef, string) []rbacv1.PolicyRule) {
	t.Helper()
	var got []string
	for _, o := range kinds(objs, "RoleBinding") {
		b := as[rbacv1.RoleBinding](t, o)
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == serviceAccount }) {
			continue
		}
		resources := grantsOn(rulesOf(b.RoleRef, b.Namespace))
		if !slices.Contains(resources, "deletionrequests") {
			continue // the leader-election Role
		}
		if !slices.Contains(resources, "secrets") {
			t.Errorf("RoleBinding %s/%s: the manager's rules hold nothing on secrets: %v", b.Namespace, b.Name, resources)
		}
		got = append(got, b.Namespace)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the manager's rules are bound in %v, want %v", got, want)
	}
}

func managerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	deps := kinds(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("%d Deployments rendered", len(deps))
	}
	return as[appsv1.Deployment](t, deps[0]).Spec.Template.Spec.Containers[0].Args
}

// TestChartNamespaceScopedInstall: with watchNamespaces the chart renders the manager's rules as
// a Role and RoleBinding in each listed namespace and the release namespace, binds only the
// cluster-scope rules cluster-wide, passes --watch-namespaces, and the API server accepts it all.
func TestChartNamespaceScopedInstall(t *testing.T) {
	ensureNamespaces(t, "shop", "billing")
	objs := render(t, "--set", "watchNamespaces={shop,billing}")
	sa := kinds(objs, "ServiceAccount")
	if len(sa) != 1 {
		t.Fatalf("%d ServiceAccounts rendered", len(sa))
	}
	serviceAccount := sa[0].GetName()

	roles := map[string]*rbacv1.Role{}
	for _, o := range kinds(objs, "Role") {
		roles[o.GetNamespace()+"/"+o.GetName()] = as[rbacv1.Role](t, o)
	}
	// The manager's rules are those of the cluster-wide install, word for word.
	var clusterWide []rbacv1.PolicyRule
	for _, o := range kinds(render(t), "ClusterRole") {
		r := as[rbacv1.ClusterRole](t, o)
		if slices.Contains(grantsOn(r.Rules), "deletionrequests/status") {
			clusterWide = r.Rules
		}
	}
	if clusterWide == nil {
		t.Fatal("the default install renders no ClusterRole with the manager's rules")
	}
	rulesOf := func(ref rbacv1.RoleRef, ns string) []rbacv1.PolicyRule {
		if ref.Kind != "Role" {
			t.Errorf("a RoleBinding in %s refers to a %s: the namespace-scoped install binds Roles", ns, ref.Kind)
			return nil
		}
		r := roles[ns+"/"+ref.Name]
		if r == nil {
			t.Errorf("Role %s/%s is not rendered", ns, ref.Name)
			return nil
		}
		if slices.Contains(grantsOn(r.Rules), "deletionrequests") && !equalRules(r.Rules, clusterWide) {
			t.Errorf("Role %s/%s differs from the cluster-wide install's rules", ns, ref.Name)
		}
		return r.Rules
	}
	assertManagerRoleBindings(t, objs, serviceAccount, []string{"shop", "billing", namespace}, rulesOf)
	assertNoClusterWideManagerRules(t, objs, serviceAccount)
	if args := managerArgs(t, objs); !slices.Contains(args, "--watch-namespaces=shop,billing") {
		t.Errorf("the manager's arguments lack --watch-namespaces=shop,billing: %v", args)
	}
	assertAccepted(t, objs)

	// The cluster-wide install, for contrast, binds the manager's rules with a ClusterRoleBinding.
	if args := managerArgs(t, render(t)); slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--watch-namespaces") }) {
		t.Errorf("the default install passes --watch-namespaces: %v", args)
	}
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) &&
			slices.Equal(x.Verbs, y.Verbs) && slices.Equal(x.ResourceNames, y.ResourceNames)
	})
}

// TestKustomizeNamespaceScopedInstall: config/namespaced builds offline, drops the cluster-wide
// binding of dsr-manager-role for RoleBindings in the listed namespace and the operator's own,
// passes --watch-namespaces, and the API server accepts it.
func TestKustomizeNamespaceScopedInstall(t *testing.T) {
	ensureNamespaces(t, "shop")
	objs := decode(t, run(t, nil, kubectl, "kustomize", "config/namespaced"))
	const serviceAccount = "dsr-controller-manager"
	clusterRoles := map[string]*rbacv1.ClusterRole{}
	for _, o := range kinds(objs, "ClusterRole") {
		clusterRoles[o.GetName()] = as[rbacv1.ClusterRole](t, o)
	}
	roles := map[string]*rbacv1.Role{}
	for _, o := range kinds(objs, "Role") {
		roles[o.GetNamespace()+"/"+o.GetName()] = as[rbacv1.Role](t, o)
	}
	rulesOf := func(ref rbacv1.RoleRef, ns string) []rbacv1.PolicyRule {
		if ref.Kind == "ClusterRole" {
			if r := clusterRoles[ref.Name]; r != nil {
				return r.Rules
			}
		} else if r := roles[ns+"/"+ref.Name]; r != nil {
			return r.Rules
		}
		t.Errorf("a RoleBinding in %s refers to %s %s, which is not built", ns, ref.Kind, ref.Name)
		return nil
	}
	assertManagerRoleBindings(t, objs, serviceAccount, []string{"shop", "dsr-system"}, rulesOf)
	assertNoClusterWideManagerRules(t, objs, serviceAccount)
	if args := managerArgs(t, objs); !slices.Contains(args, "--watch-namespaces=shop") {
		t.Errorf("the manager's arguments lack --watch-namespaces=shop: %v", args)
	}
	assertAccepted(t, objs)
}
