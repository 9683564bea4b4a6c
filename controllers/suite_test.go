package controllers_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

const operatorNamespace = "dsr-system"

var env *testenv.Env

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		env, err = testenv.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = env.Stop() }()
		defer teststore.CloseShared()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
		if err := env.Client.Create(context.Background(), ns); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// running is an operator started in-process against the envtest control plane.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Stop stops the manager the way a killed pod stops: in-flight reconciles are cut off.
func (r *running) Stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

// startOperator starts the manager with the production wiring.
func startOperator(t *testing.T, tweak ...func(*operator.Options)) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := operator.Options{
		OperatorNamespace: operatorNamespace,
		Manager: manager.Options{
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			// Each test starts its own manager in this one process.
			Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		},
	}
	for _, f := range tweak {
		f(&opts)
	}
	mgr, pool, err := operator.New(ctx, env.Config, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer pool.Close()
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(r.Stop)
	return r
}

var nsCounter atomic.Int32

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name), "-")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	create(t, ns)
	return name
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// secret is an identifiers Secret, labelled as such: the operator reads no other.
func secret(ns, name string, data map[string]string) *corev1.Secret {
	return typedSecret(ns, name, privacyv1alpha1.SecretTypeIdentifiers, data)
}

// connSecret is a store's connection Secret (DSN, URL, token, CA bundle), labelled as such.
func connSecret(ns, name string, data map[string]string) *corev1.Secret {
	return typedSecret(ns, name, privacyv1alpha1.SecretTypeConnection, data)
}

func typedSecret(ns, name, secretType string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: secretType}}, StringData: data}
}

// eventually polls cond until it holds or timeout passes, then fails with cond's last words.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getDR(t *testing.T, ns, name string) *privacyv1alpha1.DeletionRequest {
	t.Helper()
	var dr privacyv1alpha1.DeletionRequest
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &dr); err != nil {
		t.Fatal(err)
	}
	return &dr
}

func getAR(t *testing.T, ns, name string) *privacyv1alpha1.AccessRequest {
	t.Helper()
	var ar privacyv1alpha1.AccessRequest
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ar); err != nil {
		t.Fatal(err)
	}
	return &ar
}

func condition(conds []metav1.Condition, typ string) string {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return "<unset>"
	}
	return fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
}

func isTrue(conds []metav1.Condition, typ string) bool {
	return meta.IsStatusConditionTrue(conds, typ)
}

func hasReason(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string) bool {
	c := meta.FindStatusCondition(conds, typ)
	return c != nil && c.Status == status && c.Reason == reason
}

// waitDR waits until the request's condition typ has the status and reason.
func waitDR(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) *privacyv1alpha1.DeletionRequest {
	t.Helper()
	var dr *privacyv1alpha1.DeletionRequest
	eventually(t, timeout, func() (bool, string) {
		dr = getDR(t, ns, name)
		return hasReason(dr.Status.Conditions, typ, status, reason),
			fmt.Sprintf("%s want %s/%s; phase %s; conditions %s; stores %s", typ, status, reason, dr.Status.Phase, conditionsString(dr.Status.Conditions), storesString(dr))
	})
	return dr
}

func conditionsString(conds []metav1.Condition) string {
	var parts []string
	for _, c := range conds {
		parts = append(parts, fmt.Sprintf("%s=%s/%s(%s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(parts, "; ")
}

func storesString(dr *privacyv1alpha1.DeletionRequest) string {
	var parts []string
	for _, s := range dr.Status.Stores {
		parts = append(parts, fmt.Sprintf("%s/%s[%s e=%d m=%d r=%d rem=%d att=%d %q]", s.Kind, s.Name, s.Phase, s.Erased, s.Masked, s.Retained, s.Remaining, s.Attempts, s.Message))
	}
	return strings.Join(parts, " ")
}

func deletionRequest(ns, name, secretName string, mutate ...func(*privacyv1alpha1.DeletionRequest)) *privacyv1alpha1.DeletionRequest {
	dr := &privacyv1alpha1.DeletionRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: secretName}},
			Regulation: privacyv1alpha1.RegulationGDPR,
		}},
	}
	for _, m := range mutate {
		m(dr)
	}
	return dr
}

// createClusterScoped creates a cluster-scoped object and deletes it when the test ends, so that it
// cannot leak into other tests' namespaces.
func createClusterScoped(t *testing.T, obj client.Object) {
	t.Helper()
	create(t, obj)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
}
