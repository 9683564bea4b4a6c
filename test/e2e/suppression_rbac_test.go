package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// The manager binary, with its defaults (SuppressionLists on) and exactly the reviewed
// permissions (no list or watch on Secrets), loads a DROP download, sweeps, erases, writes the
// report, and is never refused a call.
func TestSuppressionListRunsWithTheReviewedPermissions(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	ns := newNamespace(t, env.Client, nil)
	jane := person{email: "supl-jane@shop.example", userID: "supl-jane"}
	bob := person{email: "supl-bob@shop.example", userID: "supl-bob"}
	s := sqliteShop(t)
	s.seed(t, jane)
	s.seed(t, bob)
	s.dataStore(t, env.Client, ns, "db", 10*time.Second)
	sum := sha256.Sum256([]byte(jane.email))
	create(t, env.Client, typedSecret(ns, "drop-download", privacyv1alpha1.SecretTypeSuppressionList,
		map[string]string{"email.csv": "ID,Hash\nA-1," + base64.StdEncoding.EncodeToString(sum[:]) + "\n"}))
	list := &privacyv1alpha1.SuppressionList{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drop"},
		Spec: privacyv1alpha1.SuppressionListSpec{
			Source:        privacyv1alpha1.SuppressionSource{DropSecretRef: &privacyv1alpha1.LocalObjectReference{Name: "drop-download"}},
			SweepInterval: &metav1.Duration{Duration: 10 * time.Second},
			Action:        privacyv1alpha1.SuppressionErase,
		}}
	create(t, env.Client, list)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), list) })

	m := startManager(t, "suppression", managerOptions{})
	var report string
	eventually(t, 90*time.Second, func() (bool, string) {
		var l privacyv1alpha1.SuppressionList
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(list), &l); err != nil {
			return false, err.Error()
		}
		if l.Status.ReportSecretName == "" {
			return false, "no report yet"
		}
		var rep corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: l.Status.ReportSecretName}, &rep); err != nil {
			return false, err.Error()
		}
		report = string(rep.Data["report.csv"])
		return strings.Contains(report, "A-1,3"), report
	})
	s.assertErased(t, jane)
	s.assertIntact(t, bob)
	if !m.Running() {
		t.Fatalf("the manager exited:\n%s", tail(m.logPath, 40))
	}
	if log := strings.ToLower(m.Log()); strings.Contains(log, "forbidden") {
		t.Errorf("the manager made calls the API server forbade:\n%s", tail(m.logPath, 40))
	}
}
