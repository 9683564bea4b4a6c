package plugin_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

// TestRunningOperatorSignsWithTheRotatedKey: the Signer a running operator holds (EnsureSigner,
// never called again: no restart) signs a receipt, `kubectl dsr keys rotate` replaces the key, the
// same Signer signs the next receipt with the new key; then a key written into the Secret by hand
// (the documented Secret edit) is published by the operator before it signs with it. Every
// receipt verifies online, from the cluster's published key set, and offline.
func TestRunningOperatorSignsWithTheRotatedKey(t *testing.T) {
	ctx := context.Background()
	const opNS = "keys-reload"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}}); err != nil {
		t.Fatal(err)
	}
	running, err := receipt.EnsureSigner(ctx, env.Client, env.Client, opNS)
	if err != nil {
		t.Fatal(err)
	}
	// Re-read on every signature, so that the test need not wait DefaultReloadInterval.
	running.SetReloadInterval(0)
	before := completed(t, "reload-before", running)

	code, out, errOut := run(t, "keys", "rotate", "--operator-namespace", opNS)
	if code != 0 || !strings.Contains(out, "no restart needed") {
		t.Fatalf("rotate: %d %q %q", code, out, errOut)
	}
	after := completed(t, "reload-after", running)
	if before.Status.Receipt.KeyID == after.Status.Receipt.KeyID {
		t.Fatalf("the running signer still signs with %s after the rotation", before.Status.Receipt.KeyID)
	}
	if !strings.Contains(out, "-> "+after.Status.Receipt.KeyID) {
		t.Errorf("the receipt after the rotation is signed by %s, not the new key: %q", after.Status.Receipt.KeyID, out)
	}

	// A key written into the Secret by hand, unpublished.
	_, handKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	handPEM, err := receipt.PrivateKeyPEM(handKey)
	if err != nil {
		t.Fatal(err)
	}
	var secret corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: opNS, Name: receipt.KeySecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	secret.Data[receipt.KeyPEM] = handPEM
	if err := env.Client.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	edited := completed(t, "reload-edited", running)
	if want := receipt.NewSigner(handKey).KeyID(); edited.Status.Receipt.KeyID != want {
		t.Fatalf("after the Secret edit the receipt is signed by %s, want %s", edited.Status.Receipt.KeyID, want)
	}

	receipts := []*privacyv1alpha1.DeletionRequest{before, after, edited}
	for _, dr := range receipts {
		if code, out, errOut := run(t, "receipt", "verify", dr.Name, "-n", "audit", "--operator-namespace", opNS); code != 0 || !strings.HasPrefix(out, "receipt verified") {
			t.Errorf("online %s: %d %q %q", dr.Name, code, out, errOut)
		}
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: opNS, Name: receipt.PublicKeyConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	ks, err := receipt.ParseKeySet([]byte(cm.Data[receipt.KeySetKey]))
	if err != nil || len(ks) != 3 {
		t.Fatalf("published key set: %d keys, %v", len(ks), err)
	}
	dir := t.TempDir()
	keySet := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keySet, []byte(cm.Data[receipt.KeySetKey]), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dr := range receipts {
		rcm := receiptCM(t, dr)
		file, sig := filepath.Join(dir, dr.Name+".json"), filepath.Join(dir, dr.Name+".sig")
		if os.WriteFile(file, []byte(rcm.Data[receipt.DataKey]), 0o600) != nil || os.WriteFile(sig, []byte(rcm.Data[receipt.SignatureKey]), 0o600) != nil {
			t.Fatal("writing the receipt files")
		}
		if code, out, errOut := runOffline(t, "receipt", "verify", "--file", file, "--signature", sig, "--public-key", keySet); code != 0 || !strings.HasPrefix(out, "receipt verified") {
			t.Errorf("offline %s: %d %q %q", dr.Name, code, out, errOut)
		}
	}
}
