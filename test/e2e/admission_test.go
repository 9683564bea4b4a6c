package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
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

// TestAdmissionPolicyConfinesTheOperatorsSecretWrites loads the shipped ValidatingAdmissionPolicy
// (config/admission), aims it at a ServiceAccount that RBAC lets write every Secret and ConfigMap,
// and checks that, as that account, only managed objects and identifiers Secrets can be written.
func TestAdmissionPolicyConfinesTheOperatorsSecretWrites(t *testing.T) {
	ctx := context.Background()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config/admission/secret_writes_policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(raw), "\n---\n")
	var policy admissionv1.ValidatingAdmissionPolicy
	var binding admissionv1.ValidatingAdmissionPolicyBinding
	if len(docs) != 2 || yaml.UnmarshalStrict([]byte(docs[0]), &policy) != nil || yaml.UnmarshalStrict([]byte(docs[1]), &binding) != nil {
		t.Fatalf("config/admission/secret_writes_policy.yaml: want a policy and a binding")
	}
	// As config/default names them (namePrefix dsr-, the operator as dsr-system/dsr-controller-manager),
	// but for this test's account.
	const sa = "dsr-e2e-vap"
	user := "system:serviceaccount:" + operatorNamespace + ":" + sa
	cond := policy.Spec.MatchConditions[0].Expression
	if !strings.Contains(cond, "system:serviceaccount:dsr-system:dsr-controller-manager") {
		t.Fatalf("the policy does not match the operator's ServiceAccount: %s", cond)
	}
	policy.Spec.MatchConditions[0].Expression = strings.ReplaceAll(cond, "system:serviceaccount:dsr-system:dsr-controller-manager", user)
	policy.Name, binding.Name, binding.Spec.PolicyName = "dsr-e2e-secret-writes", "dsr-e2e-secret-writes", "dsr-e2e-secret-writes"

	ns := newNamespace(t, env.Client, nil)
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: sa}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"secrets", "configmaps"}, Verbs: []string{"get", "create", "update", "delete"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: sa}}},
		&policy, &binding,
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	t.Cleanup(func() {
		for _, o := range objs[1:] {
			_ = env.Client.Delete(ctx, o)
		}
	})
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	asOperator, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, StringData: map[string]string{"k": "v"}}
	}
	managed := map[string]string{privacyv1alpha1.ManagedByLabel: privacyv1alpha1.ManagedByValue}
	identifiers := map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeIdentifiers}
	connection := map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeConnection}

	// The policy takes effect asynchronously: wait for the first refusal.
	eventually(t, 30*time.Second, func() (bool, string) {
		probe := mk("", nil)
		probe.GenerateName = "probe-"
		err := asOperator.Create(ctx, probe)
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), "unlabelled Secret created: policy not in force yet"
	})

	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "dsr-operator may write only") {
			t.Errorf("%s: want the policy's refusal, got %v", what, err)
		}
	}
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	refused("create an unlabelled Secret", asOperator.Create(ctx, mk("tls", nil)))
	refused("create a connection Secret", asOperator.Create(ctx, mk("conn", connection)))
	refused("create an unlabelled ConfigMap", asOperator.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}))
	allowed("create a managed Secret", asOperator.Create(ctx, mk("export", managed)))
	allowed("create a managed ConfigMap", asOperator.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "receipt", Labels: managed}}))

	// Someone else's Secrets, created by an admin.
	app := mk("app", nil)
	ids := mk("ids", identifiers)
	for _, s := range []*corev1.Secret{app, ids} {
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	refused("delete an application's Secret", asOperator.Delete(ctx, app.DeepCopy()))
	adopt := app.DeepCopy()
	adopt.Labels = managed
	refused("relabel an application's Secret as managed", asOperator.Update(ctx, adopt))
	allowed("delete an identifiers Secret", asOperator.Delete(ctx, ids.DeepCopy()))
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), &corev1.Secret{}); err != nil {
		t.Errorf("the application's Secret is gone: %v", err)
	}
}
