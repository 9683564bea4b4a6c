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

// TestKeysRotateKeepsEarlierReceiptsVerifiable: receipts signed before `kubectl dsr keys rotate`
// (and before a second rotation to a customer-supplied key) still verify, online against the
// cluster and offline against the exported key set.
func TestKeysRotateKeepsEarlierReceiptsVerifiable(t *testing.T) {
	ctx := context.Background()
	const opNS = "keys-rotation"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}}); err != nil {
		t.Fatal(err)
	}
	first, err := receipt.EnsureSigner(ctx, env.Client, env.Client, opNS) // the operator's first start
	if err != nil {
		t.Fatal(err)
	}
	before := completed(t, "before-rotation", first)

	if code, out, errOut := run(t, "keys", "rotate", "--operator-namespace", opNS); code != 0 || !strings.Contains(out, "rotated: "+first.KeyID()+" -> ") {
		t.Fatalf("rotate: %d %q %q", code, out, errOut)
	}
	second, err := receipt.EnsureSigner(ctx, env.Client, env.Client, opNS) // the restart
	if err != nil {
		t.Fatal(err)
	}
	if second.KeyID() == first.KeyID() {
		t.Fatal("the operator still signs with the old key after the rotation")
	}
	after := completed(t, "after-rotation", second)

	// A customer-supplied key.
	_, ownKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := receipt.PrivateKeyPEM(ownKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "own.pem")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "keys", "rotate", "--operator-namespace", opNS, "--private-key", keyFile); code != 0 {
		t.Fatalf("rotate --private-key: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := run(t, "keys", "rotate", "--operator-namespace", opNS, "--private-key", keyFile); code != 1 || !strings.Contains(errOut, "already the signing key") {
		t.Errorf("rotating to the current key again: %d %q", code, errOut)
	}
	third, err := receipt.EnsureSigner(ctx, env.Client, env.Client, opNS)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := receipt.ParsePrivateKey(priv)
	if third.KeyID() != receipt.NewSigner(parsed).KeyID() {
		t.Fatalf("the operator signs with %s, not the supplied key", third.KeyID())
	}

	// Online.
	for _, dr := range []string{before.Name, after.Name} {
		if code, out, errOut := run(t, "receipt", "verify", dr, "-n", "audit", "--operator-namespace", opNS); code != 0 || !strings.HasPrefix(out, "receipt verified") {
			t.Errorf("online %s: %d %q %q", dr, code, out, errOut)
		}
	}
	code, out, errOut := run(t, "keys", "list", "--operator-namespace", opNS)
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(out, first.KeyID()) || !strings.Contains(out, "(current)") {
		t.Errorf("keys list: %d %q %q", code, out, errOut)
	}

	// Offline, with the exported key set.
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: opNS, Name: receipt.PublicKeyConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keySet := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keySet, []byte(cm.Data[receipt.KeySetKey]), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dr := range []string{before.Name, after.Name} {
		var req privacyv1alpha1.DeletionRequest
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "audit", Name: dr}, &req); err != nil {
			t.Fatal(err)
		}
		rcm := receiptCM(t, &req)
		file, sig := filepath.Join(dir, dr+".json"), filepath.Join(dir, dr+".sig")
		if os.WriteFile(file, []byte(rcm.Data[receipt.DataKey]), 0o600) != nil || os.WriteFile(sig, []byte(rcm.Data[receipt.SignatureKey]), 0o600) != nil {
			t.Fatal("writing the receipt files")
		}
		if code, out, errOut := runOffline(t, "receipt", "verify", "--file", file, "--signature", sig, "--public-key", keySet); code != 0 || !strings.HasPrefix(out, "receipt verified") {
			t.Errorf("offline %s: %d %q %q", dr, code, out, errOut)
		}
	}
}
