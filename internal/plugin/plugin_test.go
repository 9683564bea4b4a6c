package plugin_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/plugin"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

var (
	env        *testenv.Env
	kubeconfig string
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		env, err = testenv.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = env.Stop() }()
		dir, err := os.MkdirTemp("", "kubectl-dsr-test")
		if err != nil {
			return 1
		}
		defer os.RemoveAll(dir)
		kubeconfig = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
			return 1
		}
		for _, ns := range []string{"dsr-system", "audit"} {
			if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := plugin.Main(context.Background(), append(args, "--kubeconfig", kubeconfig), &out, &errOut)
	return code, out.String(), errOut.String()
}

// completed creates a completed DeletionRequest with a receipt signed by signer.
func completed(t *testing.T, name string, signer *receipt.Signer) *privacyv1alpha1.DeletionRequest {
	t.Helper()
	ctx := context.Background()
	dr := &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: name},
		Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
			Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}}}}
	if err := env.Client.Create(ctx, dr); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	rc := &receipt.Receipt{Request: receipt.RequestRef{APIVersion: "privacy.dsr.dev/v1alpha1", Kind: "DeletionRequest", Namespace: "audit", Name: name, UID: string(dr.UID)},
		SubjectDigest: "sha256:abc", Regulation: "GDPR", ReceivedAt: now, Deadline: now.Add(720 * time.Hour), CompletedAt: now, IssuedAt: now,
		Stores: []receipt.Store{{Kind: "DataStore", Name: "db", Type: "postgres", Erased: 3, Masked: 2, Retained: 1, VerifiedAt: now,
			RetainedReasons: []receipt.RetainedReason{{Location: "invoices", Records: 1, Reason: "tax law"}}}}}
	signed, err := signer.Sign(rc)
	if err != nil {
		t.Fatal(err)
	}
	sig := receipt.EncodeSignature(signed.Signature)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: receipt.ConfigMapName(name)},
		Data: map[string]string{receipt.DataKey: string(signed.JSON), receipt.SignatureKey: sig}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	dr.Status = privacyv1alpha1.DeletionRequestStatus{RequestStatusCommon: privacyv1alpha1.RequestStatusCommon{Phase: privacyv1alpha1.PhaseCompleted, SubjectDigest: "sha256:abc",
		Conditions: []metav1.Condition{{Type: "Verified", Status: metav1.ConditionTrue, Reason: "Verified", Message: "clean", LastTransitionTime: metav1.Now()}}},
		Stores:  []privacyv1alpha1.DeletionStoreStatus{{Name: "db", Kind: "DataStore", Type: "postgres", Phase: "Verified", Erased: 3, Masked: 2, Retained: 1}},
		Receipt: &privacyv1alpha1.ReceiptReference{ConfigMapName: cm.Name, SHA256: signed.SHA256, Signature: sig, KeyID: signed.KeyID, IssuedAt: metav1.NewTime(now)}}
	if err := env.Client.Status().Update(ctx, dr); err != nil {
		t.Fatal(err)
	}
	return dr
}

func newSigner(t *testing.T) *receipt.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return receipt.NewSigner(priv)
}

func publish(t *testing.T, s *receipt.Signer) {
	t.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "dsr-system", Name: receipt.PublicKeyConfigMapName}}
	_ = env.Client.Delete(ctx, cm)
	cm.Data = map[string]string{receipt.KeyPEM: string(receipt.PublicKeyPEM(s.PublicKey())), receipt.KeyIDKey: s.KeyID()}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
}

func TestReceiptVerify(t *testing.T) {
	ctx := context.Background()
	signer := newSigner(t)
	publish(t, signer)
	completed(t, "good", signer)
	code, out, errOut := run(t, "receipt", "verify", "good", "-n", "audit")
	if code != 0 || !strings.Contains(out, "receipt verified") || !strings.Contains(out, "3 erased, 2 masked, 1 retained") {
		t.Fatalf("code %d\n%s\n%s", code, out, errOut)
	}

	tamper := func(name string, mutate func(*privacyv1alpha1.DeletionRequest, *corev1.ConfigMap), want string) {
		t.Run(name, func(t *testing.T) {
			dr := completed(t, "t-"+name, signer)
			var cm corev1.ConfigMap
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
				t.Fatal(err)
			}
			mutate(dr, &cm)
			if err := env.Client.Update(ctx, &cm); err != nil {
				t.Fatal(err)
			}
			if err := env.Client.Status().Update(ctx, dr); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := run(t, "receipt", "verify", dr.Name, "-n", "audit")
			if code == 0 || !strings.Contains(errOut, "NOT verified") || !strings.Contains(errOut, want) {
				t.Errorf("code %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
			}
		})
	}
	tamper("json", func(_ *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap) {
		cm.Data[receipt.DataKey] = strings.Replace(cm.Data[receipt.DataKey], `"erased":3`, `"erased":4`, 1)
	}, "signature does not match")
	tamper("status-digest", func(dr *privacyv1alpha1.DeletionRequest, _ *corev1.ConfigMap) {
		dr.Status.Receipt.SHA256 = "sha256:0000"
	}, "differs from status.receipt.sha256")
	tamper("other-request", func(dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap) {
		// A validly signed receipt of another request, moved here.
		other := completed(t, "t-other-source", signer)
		var src corev1.ConfigMap
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: other.Status.Receipt.ConfigMapName}, &src); err != nil {
			t.Fatal(err)
		}
		cm.Data = src.Data
		dr.Status.Receipt = other.Status.Receipt
	}, "not for this request")
	tamper("forged-key", func(dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap) {
		forger := newSigner(t)
		rc, err := receipt.Verify([]byte(cm.Data[receipt.DataKey]), []byte(cm.Data[receipt.SignatureKey]), signer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		signed, err := forger.Sign(rc)
		if err != nil {
			t.Fatal(err)
		}
		cm.Data = map[string]string{receipt.DataKey: string(signed.JSON), receipt.SignatureKey: receipt.EncodeSignature(signed.Signature)}
		dr.Status.Receipt.SHA256, dr.Status.Receipt.Signature = signed.SHA256, receipt.EncodeSignature(signed.Signature)
	}, "signature does not match")

	// Offline, with files and the published key.
	dir := t.TempDir()
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: "good-receipt"}, &cm); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"receipt.json": cm.Data[receipt.DataKey], "receipt.sig": cm.Data[receipt.SignatureKey], "pub.pem": string(receipt.PublicKeyPEM(signer.PublicKey()))}
	for n, d := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(d), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out2, err2 bytes.Buffer
	code = plugin.Main(ctx, []string{"receipt", "verify", "--file", filepath.Join(dir, "receipt.json"), "--signature", filepath.Join(dir, "receipt.sig"),
		"--public-key", filepath.Join(dir, "pub.pem")}, &out2, &err2)
	if code != 0 || !strings.Contains(out2.String(), "receipt verified") {
		t.Errorf("offline: %d %s %s", code, out2.String(), err2.String())
	}
	// And with openssl, as the auditor guide shows.
	if _, err := exec.LookPath("openssl"); err == nil {
		sh := fmt.Sprintf("cd %s && base64 -d receipt.sig > receipt.sig.bin && openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in receipt.json -sigfile receipt.sig.bin", dir)
		if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
			t.Errorf("openssl: %v %s", err, out)
		}
	}
}

func TestStatusAndShow(t *testing.T) {
	signer := newSigner(t)
	publish(t, signer)
	completed(t, "shown", signer)
	code, out, errOut := run(t, "status", "-n", "audit")
	if code != 0 || !strings.Contains(out, "shown") || !strings.Contains(out, "DeletionRequest") {
		t.Errorf("%d %s %s", code, out, errOut)
	}
	code, out, _ = run(t, "status", "shown", "-n", "audit")
	if code != 0 || !strings.Contains(out, "db") || !strings.Contains(out, "Verified") || !strings.Contains(out, "tax") && !strings.Contains(out, "Receipt:") {
		t.Errorf("%d %s", code, out)
	}
	code, out, _ = run(t, "receipt", "show", "shown", "-n", "audit")
	if code != 0 || !strings.Contains(out, `"subjectDigest": "sha256:abc"`) || !strings.Contains(out, "key id: "+signer.KeyID()) {
		t.Errorf("%d %s", code, out)
	}
	code, _, errOut = run(t, "status", "missing", "-n", "audit")
	if code == 0 || !strings.Contains(errOut, "no DeletionRequest or AccessRequest") {
		t.Errorf("%d %s", code, errOut)
	}
}

func TestEraseFilesRequestAndSecret(t *testing.T) {
	ctx := context.Background()
	code, out, errOut := run(t, "erase", "--email", "ann@example.com", "--user-id", "42", "--identifier", "crmId=C-9", "--regulation", "CCPA", "--name", "erase-ann", "-n", "audit")
	if code != 0 || strings.Contains(out, "ann@example.com") {
		t.Fatalf("%d %s %s", code, out, errOut)
	}
	var dr privacyv1alpha1.DeletionRequest
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: "erase-ann"}, &dr); err != nil {
		t.Fatal(err)
	}
	if dr.Spec.Regulation != "CCPA" {
		t.Errorf("regulation %s", dr.Spec.Regulation)
	}
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: dr.Spec.Subject.IdentifiersSecretRef.Name}, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["email"]) != "ann@example.com" || string(s.Data["userId"]) != "42" || string(s.Data["crmId"]) != "C-9" || len(s.Data) != 3 {
		t.Errorf("secret data keys %d", len(s.Data))
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != dr.UID {
		t.Errorf("owner %+v", s.OwnerReferences)
	}
	code, _, errOut = run(t, "access", "--email", "bob@example.com", "-n", "audit")
	if code != 0 {
		t.Errorf("access: %s", errOut)
	}
	code, _, errOut = run(t, "erase", "-n", "audit")
	if code != 2 || !strings.Contains(errOut, "at least one identifier") {
		t.Errorf("%d %s", code, errOut)
	}
}
