package plugin_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/export"
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
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		kubeconfig = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, ns := range []string{"dsr-system", "audit", "filing"} {
			if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// run runs the plugin in-process against the test control plane.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := plugin.Main(context.Background(), append(args, "--kubeconfig", kubeconfig), &out, &errOut)
	return code, out.String(), errOut.String()
}

// runOffline runs the plugin with no kubeconfig at all: KUBECONFIG points nowhere.
func runOffline(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	var out, errOut bytes.Buffer
	code := plugin.Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

const digest = "sha256:5f1e0c3e2a5b6d7c8e9f00112233445566778899aabbccddeeff001122334455"

// completed creates a completed DeletionRequest in namespace audit whose receipt signer signed,
// as the controller does it.
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
	rc := &receipt.Receipt{Request: receipt.RequestRef{APIVersion: privacyv1alpha1.GroupVersion.String(), Kind: "DeletionRequest", Namespace: "audit", Name: name, UID: string(dr.UID)},
		SubjectDigest: digest, Regulation: "GDPR", ReceivedAt: now, Deadline: now.Add(720 * time.Hour), CompletedAt: now,
		Stores: []receipt.Store{
			{Kind: "DataStore", Name: "db", Type: "postgres", Erased: 3, Masked: 2, Retained: 1, VerifiedAt: now,
				RetainedReasons: []receipt.RetainedReason{{Location: "invoices", Records: 1, Reason: "tax law"}}},
			{Kind: "ClusterDataStore", Name: "cache", Type: "redis", Erased: 4, VerifiedAt: now},
		}}
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
	tm := metav1.NewTime(now)
	dr.Status = privacyv1alpha1.DeletionRequestStatus{
		RequestStatusCommon: privacyv1alpha1.RequestStatusCommon{Phase: privacyv1alpha1.PhaseCompleted, SubjectDigest: digest,
			ReceivedAt: &tm, Deadline: &metav1.Time{Time: now.Add(720 * time.Hour)}, CompletionTime: &tm,
			Conditions: []metav1.Condition{
				{Type: privacyv1alpha1.ConditionVerified, Status: metav1.ConditionTrue, Reason: privacyv1alpha1.ReasonVerified, Message: "no store holds the subject", LastTransitionTime: tm},
				{Type: privacyv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: privacyv1alpha1.ReasonCompleted, Message: "done", LastTransitionTime: tm},
			}},
		StoreCount: 2,
		Stores: []privacyv1alpha1.DeletionStoreStatus{
			{StoreProgress: privacyv1alpha1.StoreProgress{Name: "db", Kind: "DataStore", Type: "postgres", Phase: "Verified", Attempts: 1, Message: "erased and verified"},
				Erased: 3, Masked: 2, Retained: 1, VerifiedAt: &tm,
				RetainedReasons: []privacyv1alpha1.RetainedLocation{{Location: "invoices", Records: 1, Reason: "tax law"}}},
			{StoreProgress: privacyv1alpha1.StoreProgress{Name: "cache", Kind: "ClusterDataStore", Type: "redis", Phase: "Verified"}, Erased: 4, VerifiedAt: &tm},
		},
		Receipt: &privacyv1alpha1.ReceiptReference{ConfigMapName: cm.Name, SHA256: signed.SHA256, Signature: sig, KeyID: signed.KeyID, IssuedAt: metav1.NewTime(rc.IssuedAt)}}
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

// publish makes s the operator's published key, as receipt.EnsureSigner does.
func publish(t *testing.T, s *receipt.Signer) {
	t.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "dsr-system", Name: receipt.PublicKeyConfigMapName}}
	if err := env.Client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "dsr-system", Name: receipt.PublicKeyConfigMapName},
		Data: map[string]string{receipt.KeyPEM: string(receipt.PublicKeyPEM(s.PublicKey())), receipt.KeyIDKey: s.KeyID()}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
}

func receiptCM(t *testing.T, dr *privacyv1alpha1.DeletionRequest) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: dr.Namespace, Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

// resign signs a changed copy of the request's receipt with signer and points the request at it, so
// that the signature and the status agree and only the changed field can be caught.
func resign(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer, change func(*receipt.Receipt)) {
	t.Helper()
	rc, err := receipt.Verify([]byte(cm.Data[receipt.DataKey]), []byte(cm.Data[receipt.SignatureKey]), signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	change(rc)
	signed, err := signer.Sign(rc)
	if err != nil {
		t.Fatal(err)
	}
	sig := receipt.EncodeSignature(signed.Signature)
	cm.Data = map[string]string{receipt.DataKey: string(signed.JSON), receipt.SignatureKey: sig}
	dr.Status.Receipt.SHA256, dr.Status.Receipt.Signature, dr.Status.Receipt.KeyID = signed.SHA256, sig, signed.KeyID
}

// tamperCase changes a completed request or its receipt; both the plugin and the auditor guide's
// script must refuse the result, each with its own message.
type tamperCase struct {
	name           string
	mutate         func(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer)
	plugin, script string
}

var tamperCases = []tamperCase{
	// (a) The receipt itself.
	{"json", func(_ *testing.T, _ *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, _ *receipt.Signer) {
		cm.Data[receipt.DataKey] = strings.Replace(cm.Data[receipt.DataKey], `"erased":3`, `"erased":9`, 1)
	}, "signature does not match", "the signature does not match"},
	{"signature-garbage", func(_ *testing.T, _ *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, _ *receipt.Signer) {
		cm.Data[receipt.SignatureKey] = "!!!"
	}, "not valid base64", "receipt.sig is not base64"},
	// (b) The status that points at it.
	{"status-sha256", func(_ *testing.T, dr *privacyv1alpha1.DeletionRequest, _ *corev1.ConfigMap, _ *receipt.Signer) {
		dr.Status.Receipt.SHA256 = "sha256:" + strings.Repeat("0", 64)
	}, "differs from status.receipt.sha256", "differs from status.receipt.sha256"},
	{"status-signature", func(_ *testing.T, dr *privacyv1alpha1.DeletionRequest, _ *corev1.ConfigMap, _ *receipt.Signer) {
		dr.Status.Receipt.Signature = receipt.EncodeSignature(make([]byte, ed25519.SignatureSize))
	}, "differs from status.receipt.signature", "differs from status.receipt.signature"},
	{"status-keyid", func(_ *testing.T, dr *privacyv1alpha1.DeletionRequest, _ *corev1.ConfigMap, _ *receipt.Signer) {
		dr.Status.Receipt.KeyID = "0000000000000000"
	}, "status.receipt.keyID is 0000000000000000", "status.receipt.keyID is not"},
	{"status-subject", func(_ *testing.T, dr *privacyv1alpha1.DeletionRequest, _ *corev1.ConfigMap, _ *receipt.Signer) {
		dr.Status.SubjectDigest = "sha256:" + strings.Repeat("1", 64)
	}, "subject digest " + digest + " differs from status.subjectDigest", "subjectDigest differs from status.subjectDigest"},
	// (c) A receipt, validly signed by the operator's key, that is not this request's.
	{"uid", func(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer) {
		resign(t, dr, cm, signer, func(rc *receipt.Receipt) { rc.Request.UID = "00000000-0000-0000-0000-000000000000" })
	}, "uid 00000000-0000-0000-0000-000000000000, not for this request's uid", "the receipt is for another request"},
	{"subject-in-receipt", func(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer) {
		resign(t, dr, cm, signer, func(rc *receipt.Receipt) { rc.SubjectDigest = "sha256:" + strings.Repeat("2", 64) })
	}, "differs from status.subjectDigest", "subjectDigest differs from status.subjectDigest"},
	{"remaining", func(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer) {
		resign(t, dr, cm, signer, func(rc *receipt.Receipt) { rc.Stores[1].Remaining = 2 })
	}, "store DataStore db reports 2 remaining records", "a store reports remaining records"},
	{"other-request", func(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer) {
		other := completed(t, dr.Name+"-src", signer)
		cm.Data = receiptCM(t, other).Data
		dr.Status.Receipt = other.Status.Receipt
	}, "the receipt is for audit/", "the receipt is for another request"},
	{"uid-other-key", func(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer) {
		rc, err := receipt.Verify([]byte(cm.Data[receipt.DataKey]), []byte(cm.Data[receipt.SignatureKey]), signer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		rc.Request.UID = "00000000-0000-0000-0000-000000000000"
		signed, err := newSigner(t).Sign(rc)
		if err != nil {
			t.Fatal(err)
		}
		sig := receipt.EncodeSignature(signed.Signature)
		cm.Data = map[string]string{receipt.DataKey: string(signed.JSON), receipt.SignatureKey: sig}
		dr.Status.Receipt.SHA256, dr.Status.Receipt.Signature, dr.Status.Receipt.KeyID = signed.SHA256, sig, signed.KeyID
	}, "signature does not match", "the signature does not match"},
	// (d) A receipt signed by someone else's key, the status made to agree.
	{"forged-key", func(t *testing.T, dr *privacyv1alpha1.DeletionRequest, cm *corev1.ConfigMap, signer *receipt.Signer) {
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
	}, "signature does not match", "the signature does not match"},
}

// tampered creates a completed request named name and applies c to it.
func tampered(t *testing.T, name string, c tamperCase, signer *receipt.Signer) *privacyv1alpha1.DeletionRequest {
	t.Helper()
	ctx := context.Background()
	dr := completed(t, name, signer)
	cm := receiptCM(t, dr)
	c.mutate(t, dr, cm, signer)
	if err := env.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Status().Update(ctx, dr); err != nil {
		t.Fatal(err)
	}
	return dr
}

// recreated deletes a completed request and files it again under the same name, with the old
// receipt and status: a new request wearing an old receipt.
func recreated(t *testing.T, name string, signer *receipt.Signer) (old, fresh *privacyv1alpha1.DeletionRequest) {
	t.Helper()
	ctx := context.Background()
	old = completed(t, name, signer)
	if err := env.Client.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	fresh = &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: old.Name}, Spec: old.Spec}
	if err := env.Client.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	fresh.Status = old.Status
	if err := env.Client.Status().Update(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	return old, fresh
}

func TestReceiptVerify(t *testing.T) {
	ctx := context.Background()
	signer := newSigner(t)
	publish(t, signer)
	completed(t, "good", signer)
	code, out, errOut := run(t, "receipt", "verify", "good", "-n", "audit")
	if code != 0 || !strings.Contains(out, "receipt verified: DeletionRequest audit/good") ||
		!strings.Contains(out, "2 stores, 7 erased, 2 masked, 1 retained, 0 remaining") || !strings.Contains(out, "signed by key "+signer.KeyID()) {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errOut)
	}

	for _, c := range tamperCases {
		t.Run(c.name, func(t *testing.T) {
			dr := tampered(t, "t-"+c.name, c, signer)
			code, out, errOut := run(t, "receipt", "verify", dr.Name, "-n", "audit")
			if code != 1 || out != "" || !strings.HasPrefix(errOut, "receipt NOT verified: ") || !strings.Contains(errOut, c.plugin) {
				t.Errorf("code %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, c.plugin)
			}
		})
	}

	t.Run("recreated-request", func(t *testing.T) {
		old, fresh := recreated(t, "t-recreated", signer)
		code, _, errOut := run(t, "receipt", "verify", fresh.Name, "-n", "audit")
		if code != 1 || !strings.Contains(errOut, "uid "+string(old.UID)+", not for this request's uid "+string(fresh.UID)) {
			t.Errorf("code %d, stderr %q", code, errOut)
		}
	})

	t.Run("published-key-replaced", func(t *testing.T) {
		intruder := newSigner(t)
		publish(t, intruder)
		defer publish(t, signer)
		code, out, errOut := run(t, "receipt", "verify", "good", "-n", "audit")
		if code != 1 || out != "" || !strings.Contains(errOut, "signature does not match") || !strings.Contains(errOut, "public key "+intruder.KeyID()) {
			t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("public-key-file", func(t *testing.T) {
		dir := t.TempDir()
		right, wrong := filepath.Join(dir, "right.pem"), filepath.Join(dir, "wrong.pem")
		writeFile(t, right, receipt.PublicKeyPEM(signer.PublicKey()))
		writeFile(t, wrong, receipt.PublicKeyPEM(newSigner(t).PublicKey()))
		// The file wins over the published key, even a nonexistent operator namespace.
		if code, out, errOut := run(t, "receipt", "verify", "good", "-n", "audit", "--public-key", right, "--operator-namespace", "nowhere"); code != 0 || !strings.Contains(out, "receipt verified") {
			t.Errorf("code %d, %s %s", code, out, errOut)
		}
		if code, _, errOut := run(t, "receipt", "verify", "good", "-n", "audit", "--public-key", wrong); code != 1 || !strings.Contains(errOut, "signature does not match") {
			t.Errorf("code %d, %s", code, errOut)
		}
		writeFile(t, wrong, []byte("not a key"))
		if code, _, errOut := run(t, "receipt", "verify", "good", "-n", "audit", "--public-key", wrong); code != 1 || !strings.Contains(errOut, "the public key from "+wrong) {
			t.Errorf("code %d, %s", code, errOut)
		}
	})

	t.Run("no-receipt-yet", func(t *testing.T) {
		dr := &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: "t-pending"},
			Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
				Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}}}}
		if err := env.Client.Create(ctx, dr); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := run(t, "receipt", "verify", dr.Name, "-n", "audit"); code != 1 || !strings.Contains(errOut, "has no receipt") {
			t.Errorf("code %d, %s", code, errOut)
		}
		if code, _, errOut := run(t, "receipt", "verify", "absent", "-n", "audit"); code != 1 || !strings.Contains(errOut, "neither DeletionRequest audit/absent nor its receipt") {
			t.Errorf("code %d, %s", code, errOut)
		}
	})

	t.Run("wrong-operator-namespace", func(t *testing.T) {
		code, _, errOut := run(t, "receipt", "verify", "good", "-n", "audit", "--operator-namespace", "nowhere")
		if code != 1 || !strings.Contains(errOut, "nowhere/"+receipt.PublicKeyConfigMapName) {
			t.Errorf("code %d, %s", code, errOut)
		}
	})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// exportFiles writes a request's receipt and the key the way the auditor guide tells auditors to.
func exportFiles(t *testing.T, dr *privacyv1alpha1.DeletionRequest, pub ed25519.PublicKey) string {
	t.Helper()
	dir := t.TempDir()
	cm := receiptCM(t, dr)
	writeFile(t, filepath.Join(dir, "receipt.json"), []byte(cm.Data[receipt.DataKey]))
	writeFile(t, filepath.Join(dir, "receipt.sig"), []byte(cm.Data[receipt.SignatureKey]))
	writeFile(t, filepath.Join(dir, "pub.pem"), receipt.PublicKeyPEM(pub))
	return dir
}

func TestReceiptVerifyOffline(t *testing.T) {
	signer := newSigner(t)
	dr := completed(t, "offline", signer)
	dir := exportFiles(t, dr, signer.PublicKey())
	f := func(n string) string { return filepath.Join(dir, n) }

	code, out, errOut := runOffline(t, "receipt", "verify", "--file", f("receipt.json"), "--signature", f("receipt.sig"), "--public-key", f("pub.pem"))
	if code != 0 || !strings.Contains(out, "receipt verified: DeletionRequest audit/offline (uid "+string(dr.UID)+"), subject "+digest) {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errOut)
	}

	other := filepath.Join(dir, "other.pem")
	writeFile(t, other, receipt.PublicKeyPEM(newSigner(t).PublicKey()))
	if code, out, errOut := runOffline(t, "receipt", "verify", "--file", f("receipt.json"), "--signature", f("receipt.sig"), "--public-key", other); code != 1 || out != "" || !strings.Contains(errOut, "signature does not match") {
		t.Errorf("another key: code %d, %q %q", code, out, errOut)
	}
	data, _ := os.ReadFile(f("receipt.json"))
	writeFile(t, f("tampered.json"), bytes.Replace(data, []byte(`"masked":2`), []byte(`"masked":0`), 1))
	if code, _, errOut := runOffline(t, "receipt", "verify", "--file", f("tampered.json"), "--signature", f("receipt.sig"), "--public-key", f("pub.pem")); code != 1 || !strings.Contains(errOut, "signature does not match") {
		t.Errorf("tampered: code %d, %q", code, errOut)
	}
	if code, _, errOut := runOffline(t, "receipt", "verify", "--file", f("receipt.json"), "--public-key", f("pub.pem")); code != 2 || !strings.Contains(errOut, "needs --file, --signature and --public-key") {
		t.Errorf("missing signature: code %d, %q", code, errOut)
	}
	if code, _, errOut := runOffline(t, "receipt", "verify", "--file", f("nope.json"), "--signature", f("receipt.sig"), "--public-key", f("pub.pem")); code != 1 || !strings.Contains(errOut, "reading the receipt") {
		t.Errorf("missing file: code %d, %q", code, errOut)
	}
}

// TestOpenSSLVerifies runs the openssl commands of docs/auditor-guide.md on a receipt.
func TestOpenSSLVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl on PATH")
	}
	signer := newSigner(t)
	dr := completed(t, "openssl", signer)
	dir := exportFiles(t, dr, signer.PublicKey())
	openssl := func(receiptFile string) (string, error) {
		sh := "base64 -d receipt.sig > sig.bin && openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in " + receiptFile + " -sigfile sig.bin"
		cmd := exec.Command("sh", "-c", sh)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := openssl("receipt.json"); err != nil || !strings.Contains(out, "Signature Verified Successfully") {
		t.Errorf("openssl refused a good receipt: %v %s", err, out)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "receipt.json"))
	writeFile(t, filepath.Join(dir, "tampered.json"), bytes.Replace(data, []byte(`"erased":3`), []byte(`"erased":1`), 1))
	if out, err := openssl("tampered.json"); err == nil || strings.Contains(out, "Signature Verified Successfully") {
		t.Errorf("openssl accepted a tampered receipt: %s", out)
	}
}

// fields finds a table row by its first column and splits it.
func fields(out, first string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	signer := newSigner(t)
	publish(t, signer)
	dr := completed(t, "shown", signer)
	ar := &privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: "copy"},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "CCPA",
			Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}}}}
	if err := env.Client.Create(ctx, ar); err != nil {
		t.Fatal(err)
	}
	ar.Status.Phase = privacyv1alpha1.PhaseCollecting
	ar.Status.Stores = []privacyv1alpha1.AccessStoreStatus{{StoreProgress: privacyv1alpha1.StoreProgress{Name: "crm", Kind: "DataStore", Type: "mysql", Phase: "Retrying", Attempts: 3, Message: "connection refused"}, Records: 0}}
	if err := env.Client.Status().Update(ctx, ar); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := run(t, "status", "-n", "audit")
	if code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	if f := fields(out, "shown"); len(f) < 6 || f[1] != "DeletionRequest" || f[2] != "Completed" || f[3] != "True" || f[5] != "2" {
		t.Errorf("list row of the deletion: %q\n%s", f, out)
	}
	if f := fields(out, "copy"); len(f) < 6 || f[1] != "AccessRequest" || f[2] != "Collecting" || f[5] != "1" {
		t.Errorf("list row of the access request: %q\n%s", f, out)
	}
	if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "DEADLINE") {
		t.Errorf("no header:\n%s", out)
	}

	code, out, errOut = run(t, "status", "shown", "-n", "audit")
	if code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	// STORE KIND TYPE PHASE ERASED MASKED RETAINED REMAINING PLANNED ATTEMPTS ...
	if f := fields(out, "db"); len(f) < 10 || strings.Join(f[1:8], " ") != "DataStore postgres Verified 3 2 1 0" || f[9] != "1" || !strings.Contains(strings.Join(f, " "), "erased and verified") {
		t.Errorf("store row db: %q\n%s", f, out)
	}
	if f := fields(out, "cache"); len(f) < 8 || strings.Join(f[1:8], " ") != "ClusterDataStore redis Verified 4 0 0 0" {
		t.Errorf("store row cache: %q\n%s", f, out)
	}
	if f := fields(out, "Verified"); strings.Join(f, " ") != "Verified True Verified no store holds the subject" {
		t.Errorf("condition Verified: %q\n%s", f, out)
	}
	for _, want := range []string{"db invoices: 1 records: tax law", "Subject digest: " + digest,
		"Receipt: ConfigMap shown-receipt, " + dr.Status.Receipt.SHA256 + ", key " + signer.KeyID()} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}

	code, out, _ = run(t, "status", "copy", "-n", "audit")
	if f := fields(out, "crm"); code != 0 || len(f) < 6 || strings.Join(f[1:6], " ") != "DataStore mysql Retrying 0 3" || !strings.Contains(out, "connection refused") {
		t.Errorf("access status: %d %q\n%s", code, f, out)
	}
	if code, _, errOut := run(t, "status", "copy", "--kind", "deletion", "-n", "audit"); code != 1 || !strings.Contains(errOut, `no DeletionRequest "copy"`) {
		t.Errorf("--kind deletion: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "status", "shown", "--kind", "bogus", "-n", "audit"); code != 2 || !strings.Contains(errOut, "--kind must be") {
		t.Errorf("--kind bogus: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "status", "missing", "-n", "audit"); code != 1 || !strings.Contains(errOut, "no DeletionRequest or AccessRequest") {
		t.Errorf("missing: %d %s", code, errOut)
	}
	if code, out, _ := run(t, "status", "-n", "filing-empty-ns"); code != 0 || !strings.Contains(out, "No requests in namespace filing-empty-ns") {
		t.Errorf("empty namespace: %d %s", code, out)
	}
	if code, _, errOut := run(t, "status", "-n", "audit", "--context", "no-such-context"); code == 0 || !strings.Contains(errOut, "no-such-context") {
		t.Errorf("--context: %d %s", code, errOut)
	}
}

func TestReceiptShow(t *testing.T) {
	signer := newSigner(t)
	dr := completed(t, "show", signer)
	code, out, errOut := run(t, "receipt", "show", "show", "-n", "audit")
	if code != 0 {
		t.Fatalf("%d %s", code, errOut)
	}
	for _, want := range []string{"{\n  \"version\": \"privacy.dsr.dev/receipt/v1\"", `"subjectDigest": "` + digest + `"`, `"uid": "` + string(dr.UID) + `"`,
		"key id: " + signer.KeyID(), "signature (Ed25519, base64): " + dr.Status.Receipt.Signature, "receipt.json digest: " + dr.Status.Receipt.SHA256} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// identifier values used by the filing tests; none may appear in any output.
var values = []string{"ann@example.com", "4242", "+44 20 7946 0000", "C-9-secret", "leaky@example.com", "hidden-value"}

func noValues(t *testing.T, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		for _, v := range values {
			if strings.Contains(o, v) {
				t.Errorf("output holds identifier value %q: %s", v, o)
			}
		}
	}
}

func secretsOf(t *testing.T, ns string) []corev1.Secret {
	t.Helper()
	var list corev1.SecretList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestErase(t *testing.T) {
	ctx := context.Background()
	code, out, errOut := run(t, "erase", "--email", "ann@example.com", "--user-id", "4242", "--phone", "+44 20 7946 0000", "--identifier", "crmId=C-9-secret",
		"--regulation", "CCPA", "--received-at", "2026-01-02T03:04:05Z", "--name", "erase-ann", "--dry-run-request", "-n", "filing")
	noValues(t, out, errOut)
	if code != 0 || !strings.Contains(out, "deletionrequest/erase-ann created") {
		t.Fatalf("%d %s %s", code, out, errOut)
	}
	var dr privacyv1alpha1.DeletionRequest
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "filing", Name: "erase-ann"}, &dr); err != nil {
		t.Fatal(err)
	}
	if dr.Spec.Regulation != "CCPA" || !dr.Spec.DryRun || dr.Spec.ReceivedAt == nil || !dr.Spec.ReceivedAt.Equal(&metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}) {
		t.Errorf("spec %+v", dr.Spec)
	}
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "filing", Name: dr.Spec.Subject.IdentifiersSecretRef.Name}, &s); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Name, "erase-ann-identifiers-") || !strings.Contains(out, s.Name) {
		t.Errorf("secret name %s, output %s", s.Name, out)
	}
	want := map[string]string{"email": "ann@example.com", "userId": "4242", "phone": "+44 20 7946 0000", "crmId": "C-9-secret"}
	if len(s.Data) != len(want) {
		t.Errorf("secret has %d keys, want %d", len(s.Data), len(want))
	}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("secret key %s holds the wrong value", k)
		}
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != dr.UID || s.OwnerReferences[0].Kind != "DeletionRequest" ||
		s.OwnerReferences[0].APIVersion != privacyv1alpha1.GroupVersion.String() || s.OwnerReferences[0].Name != "erase-ann" {
		t.Errorf("owner %+v", s.OwnerReferences)
	}

	// A generated name, the defaults.
	code, out, errOut = run(t, "erase", "--email", "leaky@example.com", "-n", "filing")
	noValues(t, out, errOut)
	m := regexp.MustCompile(`deletionrequest/(erase-\w+) created`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("%d %s %s", code, out, errOut)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "filing", Name: m[1]}, &dr); err != nil || dr.Spec.Regulation != "GDPR" || dr.Spec.DryRun || dr.Spec.ReceivedAt != nil {
		t.Errorf("%v %+v", err, dr.Spec)
	}

	code, out, errOut = run(t, "access", "--email", "leaky@example.com", "-n", "filing")
	noValues(t, out, errOut)
	m = regexp.MustCompile(`accessrequest/(access-\w+) created \(identifiers in Secret (access-\w+-identifiers-\w+)\)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("access: %d %s %s", code, out, errOut)
	}
	var ar privacyv1alpha1.AccessRequest
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "filing", Name: m[1]}, &ar); err != nil || ar.Spec.Subject.IdentifiersSecretRef.Name != m[2] {
		t.Errorf("%v %+v", err, ar.Spec)
	}
}

func TestEraseRefusesWithoutLeaking(t *testing.T) {
	before := len(secretsOf(t, "filing"))
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no identifier", []string{"erase"}, 2, "at least one identifier"},
		{"identifier without =", []string{"erase", "--identifier", "hidden-value"}, 2, "is not name=value"},
		{"empty identifier", []string{"erase", "--identifier", "crm="}, 2, "crm has an empty value"},
		{"bad identifier name", []string{"erase", "--identifier", "1crm=hidden-value"}, 2, `key "1crm" is not an identifier name`},
		{"twice", []string{"erase", "--email", "hidden-value", "--identifier", "email=leaky@example.com"}, 2, "identifier email is given twice"},
		{"stray argument", []string{"erase", "hidden-value", "--email", "leaky@example.com"}, 2, "no positional arguments"},
		{"mistyped flag", []string{"erase", "--emial", "hidden-value"}, 2, "unknown flag: --emial"},
		{"mistyped flag with =", []string{"erase", "--emial=hidden-value"}, 2, "unknown flag: --emial"},
		{"unknown shorthand", []string{"erase", "-ehidden-value"}, 2, "unknown shorthand flag: -e"},
		{"value for a switch", []string{"erase", "--email", "leaky@example.com", "--dry-run-request=hidden-value"}, 2, "invalid value for flag --dry-run-request"},
		{"bad flag syntax", []string{"erase", "--=hidden-value"}, 2, "bad flag syntax"},
		{"empty email", []string{"erase", "--email=", "--user-id", "hidden-value"}, 2, "identifier email has an empty value"},
		{"empty email as argument", []string{"erase", "--email", "", "--user-id", "hidden-value"}, 2, "identifier email has an empty value"},
		{"email twice", []string{"erase", "--email", "hidden-value", "--email", "leaky@example.com"}, 2, "identifier email is given twice"},
		{"unknown command", []string{"hidden-value"}, 2, "unknown command for kubectl dsr"},
		{"bad time", []string{"erase", "--email", "hidden-value", "--received-at", "yesterday"}, 2, "--received-at must be RFC 3339"},
		{"too long", []string{"erase", "--email", "hidden-value" + strings.Repeat("x", 17<<10)}, 2, "longer than"},
		{"bad regulation", []string{"erase", "--email", "hidden-value", "--regulation", "HIPAA"}, 1, "creating the request"},
		{"name taken", []string{"erase", "--email", "hidden-value", "--name", "taken"}, 1, "already exists"},
	}
	// "taken" exists already.
	if code, _, errOut := run(t, "erase", "--email", "leaky@example.com", "--name", "taken", "-n", "filing"); code != 0 {
		t.Fatal(errOut)
	}
	before++
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, append(c.args, "-n", "filing")...)
			noValues(t, out, errOut)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("code %d (want %d), stderr %q (want %q)", code, c.code, errOut, c.want)
			}
		})
	}
	// A refused request leaves no identifiers behind.
	if after := len(secretsOf(t, "filing")); after != before {
		t.Errorf("%d Secrets before, %d after refused requests", before, after)
	}
}

// guideScript extracts the verify-receipt.sh block of docs/auditor-guide.md, so that the commands
// auditors copy are the ones tested.
func guideScript(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "auditor-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- verify-receipt\\.sh[^\n]*-->\n```sh\n(.*?)```\n").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/auditor-guide.md has no verify-receipt.sh block")
	}
	path := filepath.Join(t.TempDir(), "verify-receipt.sh")
	writeFile(t, path, m[1])
	return path
}

// TestAuditorGuideScript runs the guide's kubectl + openssl script against the test API server.
func TestAuditorGuideScript(t *testing.T) {
	for _, tool := range []string{"openssl", "sha256sum", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets, err := testenv.BinaryAssetsDirectory(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(assets, "kubectl")); err != nil {
		t.Skipf("no kubectl in %s", assets)
	}
	script := guideScript(t)
	sh := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command("sh", append([]string{script}, args...)...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "PATH="+assets+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig, "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode(), string(out)
			}
			t.Fatal(err)
		}
		return 0, string(out)
	}

	signer := newSigner(t)
	publish(t, signer)
	completed(t, "guide", signer)
	if code, out := sh(t, "audit", "guide"); code != 0 || !strings.Contains(out, "receipt verified: audit/guide, key "+signer.KeyID()) {
		t.Fatalf("the guide's script refused a good receipt: exit %d\n%s", code, out)
	}

	for _, c := range tamperCases {
		t.Run(c.name, func(t *testing.T) {
			dr := tampered(t, "g-"+c.name, c, signer)
			code, out := sh(t, "audit", dr.Name)
			if code != 1 || !strings.Contains(out, "receipt NOT verified: ") || !strings.Contains(out, c.script) || strings.Contains(out, "receipt verified") {
				t.Errorf("exit %d, want 1 and %q:\n%s", code, c.script, out)
			}
		})
	}
	t.Run("recreated-request", func(t *testing.T) {
		_, fresh := recreated(t, "g-recreated", signer)
		if code, out := sh(t, "audit", fresh.Name); code != 1 || !strings.Contains(out, "the receipt is for another request") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("no-receipt", func(t *testing.T) {
		dr := &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: "g-pending"},
			Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
				Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}}}}
		if err := env.Client.Create(context.Background(), dr); err != nil {
			t.Fatal(err)
		}
		if code, out := sh(t, "audit", dr.Name); code != 1 || !strings.Contains(out, "has no receipt yet") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("published-key-replaced", func(t *testing.T) {
		publish(t, newSigner(t))
		defer publish(t, signer)
		if code, out := sh(t, "audit", "guide"); code != 1 || !strings.Contains(out, "the signature does not match") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		// With the auditor's trusted copy of the key, the genuine receipt still verifies.
		trusted := filepath.Join(t.TempDir(), "trusted.pem")
		writeFile(t, trusted, receipt.PublicKeyPEM(signer.PublicKey()))
		if code, out := sh(t, "audit", "guide", trusted); code != 0 || !strings.Contains(out, "receipt verified") {
			t.Errorf("trusted key: exit %d:\n%s", code, out)
		}
	})
}

func TestFlagsBeforeTheCommand(t *testing.T) {
	signer := newSigner(t)
	publish(t, signer)
	completed(t, "flags-first", signer)
	var out, errOut bytes.Buffer
	code := plugin.Main(context.Background(), []string{"-n", "audit", "--kubeconfig", kubeconfig, "receipt", "verify", "flags-first"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "receipt verified: DeletionRequest audit/flags-first") {
		t.Errorf("%d %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	code = plugin.Main(context.Background(), []string{"--namespace=audit", "--kubeconfig", kubeconfig, "status", "flags-first"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "DeletionRequest audit/flags-first") {
		t.Errorf("%d %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	code = plugin.Main(context.Background(), []string{"-n", "audit", "--kubeconfig", kubeconfig, "status", "--kind=deletion", "flags-first"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "DeletionRequest audit/flags-first") {
		t.Errorf("%d %s %s", code, out.String(), errOut.String())
	}
}

// exported creates a completed AccessRequest whose export holds records, as the controller stores it.
func exported(t *testing.T, name string, records int) (*privacyv1alpha1.AccessRequest, *export.Encoded) {
	t.Helper()
	ctx := context.Background()
	ar := &privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: name},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
			Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}}}}
	if err := env.Client.Create(ctx, ar); err != nil {
		t.Fatal(err)
	}
	coll := &connector.Collection{}
	for i := range records {
		coll.Records = append(coll.Records, connector.Record{Location: "orders", Key: fmt.Sprint(i), Data: map[string]any{"id": i, "item": "teapot"}})
	}
	doc := export.Build(export.Request{Namespace: "audit", Name: name, UID: string(ar.UID)}, "GDPR", digest, time.Now(),
		[]export.StoreInput{{Kind: "DataStore", Name: "shop", Spec: &privacyv1alpha1.DataStoreSpec{Type: "postgres"}, Data: coll}})
	enc, err := export.Encode(doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: name + "-export"}, Data: map[string][]byte{enc.Key: enc.Bytes}}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	expires := metav1.NewTime(time.Now().Add(time.Hour))
	ar.Status.Phase = privacyv1alpha1.PhaseCompleted
	ar.Status.Export = &privacyv1alpha1.ExportReference{SecretName: secret.Name, Key: enc.Key, SHA256: enc.SHA256, Bytes: int64(len(enc.Bytes)),
		Encoding: enc.Encoding, ExpiresAt: &expires}
	if err := env.Client.Status().Update(ctx, ar); err != nil {
		t.Fatal(err)
	}
	return ar, enc
}

// decoded is the JSON document an export holds.
func decoded(t *testing.T, enc *export.Encoded) []byte {
	t.Helper()
	if enc.Encoding != "gzip" {
		return enc.Bytes
	}
	zr, err := gzip.NewReader(bytes.NewReader(enc.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestExport(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		records  int
		encoding string
	}{{"small", 1, "gzip"}, {"large", 200, "gzip"}} { // the Art. 15 rights and missing items put every document over gzipFrom
		t.Run(c.name, func(t *testing.T) {
			ar, enc := exported(t, "export-"+c.name, c.records)
			if enc.Encoding != c.encoding {
				t.Fatalf("the fixture is %s, want %s", enc.Encoding, c.encoding)
			}
			want := decoded(t, enc)
			var doc export.Document
			if err := json.Unmarshal(want, &doc); err != nil || doc.RecordCount != int64(c.records) {
				t.Fatalf("fixture: %v, %d records", err, doc.RecordCount)
			}

			code, out, errOut := run(t, "export", ar.Name, "-n", "audit")
			if code != 0 || out != string(want) {
				t.Errorf("stdout: code %d, stderr %q, %d bytes, want %d", code, errOut, len(out), len(want))
			}
			file := filepath.Join(t.TempDir(), "export.json")
			if code, out, errOut := run(t, "export", ar.Name, "-n", "audit", "-o", file); code != 0 || out != "" {
				t.Fatalf("-o: code %d, %q %q", code, out, errOut)
			}
			got, err := os.ReadFile(file)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("-o wrote %d bytes (%v), want %d", len(got), err, len(want))
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, %v: an export is personal data", fi.Mode(), err)
			}

			// The Secret's content no longer matches the status: nothing is written.
			var s corev1.Secret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: ar.Status.Export.SecretName}, &s); err != nil {
				t.Fatal(err)
			}
			s.Data[enc.Key] = append(s.Data[enc.Key], ' ')
			if err := env.Client.Update(ctx, &s); err != nil {
				t.Fatal(err)
			}
			tampered := filepath.Join(t.TempDir(), "tampered.json")
			code, out, errOut = run(t, "export", ar.Name, "-n", "audit", "-o", tampered)
			if code != 1 || out != "" || !strings.Contains(errOut, "differs from status.export.sha256 "+enc.SHA256) {
				t.Errorf("tampered: code %d, %q %q", code, out, errOut)
			}
			if _, err := os.Stat(tampered); !os.IsNotExist(err) {
				t.Errorf("a tampered export was written: %v", err)
			}

			// Expired: the Secret is gone.
			if err := env.Client.Delete(ctx, &s); err != nil {
				t.Fatal(err)
			}
			if code, _, errOut := run(t, "export", ar.Name, "-n", "audit"); code != 1 || !strings.Contains(errOut, "is gone") {
				t.Errorf("gone: code %d, %q", code, errOut)
			}
		})
	}

	t.Run("no-export-yet", func(t *testing.T) {
		ar := &privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: "export-pending"},
			Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: "GDPR",
				Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: "ids"}}}}}
		if err := env.Client.Create(ctx, ar); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := run(t, "export", ar.Name, "-n", "audit"); code != 1 || !strings.Contains(errOut, "has no export") {
			t.Errorf("code %d, %q", code, errOut)
		}
		if code, _, errOut := run(t, "export", "-n", "audit"); code != 2 || !strings.Contains(errOut, "needs exactly one request NAME") {
			t.Errorf("no name: code %d, %q", code, errOut)
		}
	})
}

func TestHelpAndUsage(t *testing.T) {
	for _, c := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{nil, 0, "Available Commands:", ""},
		{[]string{"--help"}, 0, "--operator-namespace", ""},
		{[]string{"receipt", "verify", "--help"}, 0, "that every store shows 0 remaining", ""},
		{[]string{"erase", "--help"}, 0, "--dry-run-request", ""},
		{[]string{"access", "--help"}, 0, "Files an AccessRequest", ""},
		{[]string{"receipt"}, 2, "", "kubectl dsr receipt needs a command"},
		{[]string{"receipt", "check", "x"}, 2, "", "unknown command for kubectl dsr receipt"},
		{[]string{"frobnicate"}, 2, "", "unknown command for kubectl dsr\n"},
		{[]string{"stauts"}, 2, "", `unknown command for kubectl dsr; did you mean "status"?`},
		{[]string{"receipt", "verfy"}, 2, "", `did you mean "verify"?`},
		// Flags' values are never echoed, here the one after --email: it is missing.
		{[]string{"erase", "--email"}, 2, "", "flag needs an argument: --email"},
		{[]string{"status", "a", "b"}, 2, "", "status takes at most one request NAME"},
		{[]string{"receipt", "show"}, 2, "", "needs exactly one request NAME"},
		{[]string{"receipt", "verify", "--file", "r.json"}, 2, "", "needs --file, --signature and --public-key"},
		{[]string{"receipt", "verify", "x", "--file", "r.json", "--signature", "s", "--public-key", "p"}, 2, "", "takes no request NAME"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errOut := runOffline(t, c.args...)
			if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errOut, c.err) {
				t.Errorf("code %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, c.code, out, c.out, errOut, c.err)
			}
			if c.code == 2 && !strings.Contains(errOut, "--help'.") {
				t.Errorf("a usage error should say where help is: %q", errOut)
			}
		})
	}
}

// clusterRoleFromConfig creates the ClusterRole of config/rbac/<file>.
func clusterRoleFromConfig(t *testing.T, file string) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), &role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return role.Name
}

// grant binds user to a ClusterRole in ns, or to rules given inline.
func grant(t *testing.T, ns, user, clusterRole string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	name := user + "-" + clusterRole
	if len(rules) > 0 {
		name = user + "-inline"
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
		if err := env.Client.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := env.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole}}); err != nil {
		t.Fatal(err)
	}
}

// TestPermissionsOfTheGuide checks the permissions the auditor guide says each command needs,
// impersonating users who hold exactly those (--as, one of kubectl's flags).
func TestPermissionsOfTheGuide(t *testing.T) {
	signer := newSigner(t)
	publish(t, signer)
	completed(t, "perm", signer)
	viewer := clusterRoleFromConfig(t, "privacy_viewer_role.yaml")
	requester := clusterRoleFromConfig(t, "privacy_requester_role.yaml")
	getConfigMaps := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}

	// An auditor: the viewer role, and get on ConfigMaps here and on the published key.
	grant(t, "audit", "auditor", viewer)
	grant(t, "audit", "auditor", "", getConfigMaps)
	grant(t, "dsr-system", "auditor", "", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"},
		ResourceNames: []string{receipt.PublicKeyConfigMapName}, Verbs: []string{"get"}})
	if code, out, errOut := run(t, "receipt", "verify", "perm", "-n", "audit", "--as", "auditor"); code != 0 || !strings.Contains(out, "receipt verified") {
		t.Errorf("auditor verify: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := run(t, "status", "-n", "audit", "--as", "auditor"); code != 0 || fields(out, "perm") == nil {
		t.Errorf("auditor status: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := run(t, "status", "perm", "-n", "audit", "--as", "auditor"); code != 0 {
		t.Errorf("auditor status NAME: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "erase", "--email", "leaky@example.com", "-n", "audit", "--as", "auditor"); code != 1 || !strings.Contains(errOut, "forbidden") {
		t.Errorf("an auditor filed a request: %d %s", code, errOut)
	}
	// Without get on ConfigMaps there is no receipt to verify.
	grant(t, "audit", "viewer-only", viewer)
	if code, _, errOut := run(t, "receipt", "verify", "perm", "-n", "audit", "--as", "viewer-only"); code != 1 || !strings.Contains(errOut, "forbidden") {
		t.Errorf("viewer-only: %d %s", code, errOut)
	}

	// A requester: the requester role, and create, patch and delete on Secrets.
	grant(t, "filing", "requester", requester)
	grant(t, "filing", "requester", "", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "patch", "delete"}})
	before := len(secretsOf(t, "filing"))
	if code, _, errOut := run(t, "erase", "--email", "leaky@example.com", "--regulation", "HIPAA", "-n", "filing", "--as", "requester"); code != 1 ||
		!strings.Contains(errOut, "creating the request") || strings.Contains(errOut, "could not be deleted") {
		t.Errorf("refused request: %d %s", code, errOut)
	}
	if after := len(secretsOf(t, "filing")); after != before {
		t.Errorf("a refused request left its identifiers Secret: %d Secrets, then %d", before, after)
	}
	code, out, errOut := run(t, "erase", "--email", "leaky@example.com", "--name", "perm-erase", "-n", "filing", "--as", "requester")
	noValues(t, out, errOut)
	if code != 0 {
		t.Fatalf("requester erase: %d %s %s", code, out, errOut)
	}
	var dr privacyv1alpha1.DeletionRequest
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "filing", Name: "perm-erase"}, &dr); err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "filing", Name: dr.Spec.Subject.IdentifiersSecretRef.Name}, &s); err != nil ||
		len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != dr.UID {
		t.Errorf("requester's Secret: %v %+v", err, s.OwnerReferences)
	}
	if code, _, errOut := run(t, "access", "--email", "leaky@example.com", "-n", "filing", "--as", "requester"); code != 0 {
		t.Errorf("requester access: %d %s", code, errOut)
	}
}

// TestAsKubectlPlugin builds cmd/kubectl-dsr and runs it the way users do: through kubectl's plugin
// lookup, with the kubeconfig from $KUBECONFIG.
func TestAsKubectlPlugin(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets, err := testenv.BinaryAssetsDirectory(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(assets, "kubectl")); err != nil {
		t.Skipf("no kubectl in %s", assets)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kubectl-dsr"), "./cmd/kubectl-dsr")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	kubectl := func(args ...string) (int, string, string) {
		cmd := exec.Command(filepath.Join(assets, "kubectl"), args...)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig, "HOME="+t.TempDir())
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}
	if code, out, errOut := kubectl("plugin", "list"); code != 0 || !strings.Contains(out, filepath.Join(bin, "kubectl-dsr")) {
		t.Errorf("kubectl plugin list: %d %s %s", code, out, errOut)
	}

	signer := newSigner(t)
	publish(t, signer)
	completed(t, "via-kubectl", signer)
	if code, out, errOut := kubectl("dsr", "receipt", "verify", "via-kubectl", "-n", "audit"); code != 0 || !strings.HasPrefix(out, "receipt verified: DeletionRequest audit/via-kubectl") {
		t.Errorf("verify: %d %s %s", code, out, errOut)
	}
	dr := tampered(t, "via-kubectl-tampered", tamperCases[0], signer)
	if code, out, errOut := kubectl("dsr", "receipt", "verify", dr.Name, "-n", "audit"); code != 1 || out != "" || !strings.HasPrefix(errOut, "receipt NOT verified: the signature does not match") {
		t.Errorf("tampered: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := kubectl("dsr", "status", "--kind", "nonsense"); code != 2 || !strings.Contains(errOut, "See 'kubectl dsr status --help'.") {
		t.Errorf("usage error: %d %q", code, errOut)
	}
}

// A receipt outlives its request for the operator's records period, and still verifies.
func TestReceiptVerifyRequestDeleted(t *testing.T) {
	ctx := context.Background()
	signer := newSigner(t)
	publish(t, signer)
	deleteRequest := func(dr *privacyv1alpha1.DeletionRequest) {
		t.Helper()
		if err := env.Client.Delete(ctx, dr); err != nil {
			t.Fatal(err)
		}
	}

	dr := completed(t, "gone", signer)
	deleteRequest(dr)
	code, out, errOut := run(t, "receipt", "verify", "gone", "-n", "audit")
	if code != 0 || !strings.Contains(out, "receipt verified: DeletionRequest audit/gone (uid "+string(dr.UID)+", request deleted)") ||
		!strings.Contains(out, "signed by key "+signer.KeyID()) || !strings.Contains(out, "compare request.uid and subjectDigest") {
		t.Fatalf("code %d\nstdout %s\nstderr %s", code, out, errOut)
	}

	t.Run("tampered", func(t *testing.T) {
		dr := completed(t, "gone-tampered", signer)
		cm := receiptCM(t, dr)
		cm.Data[receipt.DataKey] = strings.Replace(cm.Data[receipt.DataKey], `"erased":3`, `"erased":9`, 1)
		if err := env.Client.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		deleteRequest(dr)
		code, out, errOut := run(t, "receipt", "verify", dr.Name, "-n", "audit")
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "receipt NOT verified: ") || !strings.Contains(errOut, "signature does not match") {
			t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("another-requests-receipt", func(t *testing.T) {
		// A validly signed receipt of request "other", stored under the receipt name of "posing".
		dr := completed(t, "other", signer)
		cm := receiptCM(t, dr)
		posing := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "audit", Name: receipt.ConfigMapName("posing")}, Data: cm.Data}
		if err := env.Client.Create(ctx, posing); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := run(t, "receipt", "verify", "posing", "-n", "audit")
		if code != 1 || !strings.Contains(errOut, "the receipt is for audit/other, not for audit/posing") {
			t.Errorf("code %d, stderr %q", code, errOut)
		}
	})

	t.Run("receipt-gone-too", func(t *testing.T) {
		code, _, errOut := run(t, "receipt", "verify", "never-existed", "-n", "audit")
		if code != 1 || !strings.Contains(errOut, "neither DeletionRequest audit/never-existed nor its receipt ConfigMap") {
			t.Errorf("code %d, stderr %q", code, errOut)
		}
	})
}
