// Package e2e proves the operator under faults and abuse: the manager runs as its own process
// (built from main.go, with the permissions of config/rbac and nothing more) against a real control
// plane and real databases; tests kill it, stop its databases and its API server, elect a new
// leader, feed it hostile objects and identifiers, and check what is left in every store, in the
// receipts, and in the logs, events and statuses it wrote.
//
// docs/security.md points to these tests for each claim it makes.
package e2e

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
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/go-logr/logr"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

const operatorNamespace = "dsr-system"

// settle bounds how long a request may take to finish once nothing stands in its way. Two cores
// are shared by control planes, databases, managers and other test binaries.
const settle = 90 * time.Second

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	code := func() int {
		var err error
		env, err = testenv.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			if err := env.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
		defer teststore.CloseShared()
		defer cleanupBuild()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
		if err := env.Client.Create(context.Background(), ns); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		code := m.Run()
		keepOrRemoveLogs(code)
		return code
	}()
	os.Exit(code)
}

// The manager watches every namespace, so two tests' managers on one control plane would both
// work on each other's requests: a test that kills "the" manager would prove nothing. Tests that
// run a manager against env therefore hold this lock; the others run beside them.
var managerSlot sync.Mutex

func exclusiveManager(t *testing.T) {
	t.Helper()
	managerSlot.Lock()
	t.Cleanup(managerSlot.Unlock)
}

var nsCounter atomic.Int32

// newNamespace creates a namespace for one test and, when the test ends, deletes the objects the
// managers of later tests would otherwise keep working on (envtest has no namespace controller,
// so deleting the namespace would leave them in place).
func newNamespace(t *testing.T, c client.Client, labels map[string]string) string {
	t.Helper()
	base := strings.ToLower(t.Name())
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, base)
	name := fmt.Sprintf("e%d-%s", nsCounter.Add(1), base)
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-")
	create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	t.Cleanup(func() { deleteRequestsAndStores(c, name) })
	return name
}

func deleteRequestsAndStores(c client.Client, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, obj := range []client.Object{&privacyv1alpha1.DeletionRequest{}, &privacyv1alpha1.AccessRequest{}, &privacyv1alpha1.DataStore{}} {
		_ = c.DeleteAllOf(ctx, obj, client.InNamespace(ns))
	}
}

func create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
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
		time.Sleep(250 * time.Millisecond)
	}
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

func accessRequest(ns, name, secretName string) *privacyv1alpha1.AccessRequest {
	return &privacyv1alpha1.AccessRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: secretName}},
			Regulation: privacyv1alpha1.RegulationGDPR,
		}},
	}
}

func getDR(t *testing.T, c client.Client, ns, name string) *privacyv1alpha1.DeletionRequest {
	t.Helper()
	var dr privacyv1alpha1.DeletionRequest
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &dr); err != nil {
		t.Fatal(err)
	}
	return &dr
}

func hasReason(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string) bool {
	c := meta.FindStatusCondition(conds, typ)
	return c != nil && c.Status == status && c.Reason == reason
}

func completed(dr *privacyv1alpha1.DeletionRequest) bool {
	return hasReason(dr.Status.Conditions, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted) &&
		meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified)
}

// waitDR waits until the request's condition typ has the status and reason.
func waitDR(t *testing.T, c client.Client, ns, name, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) *privacyv1alpha1.DeletionRequest {
	t.Helper()
	var dr *privacyv1alpha1.DeletionRequest
	eventually(t, timeout, func() (bool, string) {
		dr = getDR(t, c, ns, name)
		return hasReason(dr.Status.Conditions, typ, status, reason), fmt.Sprintf("%s/%s: %s want %s/%s; %s", ns, name, typ, status, reason, describe(dr))
	})
	return dr
}

// waitAllCompleted waits until every named request is completed and verified.
func waitAllCompleted(t *testing.T, c client.Client, ns string, names []string, timeout time.Duration) map[string]*privacyv1alpha1.DeletionRequest {
	t.Helper()
	out := map[string]*privacyv1alpha1.DeletionRequest{}
	eventually(t, timeout, func() (bool, string) {
		var waiting []string
		for _, name := range names {
			if _, ok := out[name]; ok {
				continue
			}
			dr := getDR(t, c, ns, name)
			if completed(dr) {
				out[name] = dr
				continue
			}
			waiting = append(waiting, name+": "+describe(dr))
		}
		if len(waiting) == 0 {
			return true, ""
		}
		if len(waiting) > 3 {
			waiting = append(waiting[:3], fmt.Sprintf("... and %d more", len(waiting)-3))
		}
		return false, fmt.Sprintf("%d of %d not completed: %s", len(names)-len(out), len(names), strings.Join(waiting, "\n  "))
	})
	return out
}

func describe(dr *privacyv1alpha1.DeletionRequest) string {
	var parts []string
	parts = append(parts, "phase "+string(dr.Status.Phase))
	for _, c := range dr.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s/%s(%s)", c.Type, c.Status, c.Reason, c.Message))
	}
	for _, s := range dr.Status.Stores {
		parts = append(parts, fmt.Sprintf("%s/%s[%s e=%d m=%d r=%d rem=%d att=%d %q]", s.Kind, s.Name, s.Phase, s.Erased, s.Masked, s.Retained, s.Remaining, s.Attempts, s.Message))
	}
	return strings.Join(parts, "; ")
}

func storeStatus(t *testing.T, dr *privacyv1alpha1.DeletionRequest, name string) privacyv1alpha1.DeletionStoreStatus {
	t.Helper()
	for _, s := range dr.Status.Stores {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s: store %s not in status: %s", dr.Name, name, describe(dr))
	return privacyv1alpha1.DeletionStoreStatus{}
}

// verifyReceipt checks the request's receipt against the published public key, the request and
// its status, and returns it.
func verifyReceipt(t *testing.T, c client.Client, dr *privacyv1alpha1.DeletionRequest) *receipt.Receipt {
	t.Helper()
	ctx := context.Background()
	if dr.Status.Receipt == nil {
		t.Fatalf("%s: no status.receipt", dr.Name)
	}
	var cm, pub corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: dr.Namespace, Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: receipt.PublicKeyConfigMapName}, &pub); err != nil {
		t.Fatal(err)
	}
	key, err := receipt.ParsePublicKey([]byte(pub.Data[receipt.KeyPEM]))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(cm.Data[receipt.DataKey])
	rc, err := receipt.Verify(data, []byte(cm.Data[receipt.SignatureKey]), key)
	if err != nil {
		t.Fatalf("%s: receipt does not verify: %v", dr.Name, err)
	}
	if receipt.Digest(data) != dr.Status.Receipt.SHA256 || cm.Data[receipt.SignatureKey] != dr.Status.Receipt.Signature {
		t.Errorf("%s: status.receipt does not match the ConfigMap", dr.Name)
	}
	if rc.Request.UID != string(dr.UID) || rc.Request.Name != dr.Name || rc.SubjectDigest != dr.Status.SubjectDigest {
		t.Errorf("%s: the receipt is for another request or subject: %+v", dr.Name, rc.Request)
	}
	if len(rc.Stores) != len(dr.Status.Stores) {
		t.Errorf("%s: the receipt lists %d stores, the status %d", dr.Name, len(rc.Stores), len(dr.Status.Stores))
	}
	for _, rs := range rc.Stores {
		for _, s := range dr.Status.Stores {
			if s.Name == rs.Name && (s.Erased != rs.Erased || s.Masked != rs.Masked || s.Retained != rs.Retained || rs.Remaining != 0) {
				t.Errorf("%s: receipt store %+v differs from status %+v", dr.Name, rs, s)
			}
		}
	}
	return rc
}
