package receipt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// TestSignerFollowsTheKeySecret: a Signer from EnsureSigner signs with a key written into the
// Secret after it started, once published; while the Secret cannot be read it keeps the last key
// for less than RotationGrace, then refuses to sign.
func TestSignerFollowsTheKeySecret(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var failReads bool
	c := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, isSecret := obj.(*corev1.Secret); isSecret && failReads {
				return errors.New("the API server is away")
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	s, err := EnsureSigner(ctx, c, c, "ops")
	if err != nil {
		t.Fatal(err)
	}
	first := s.KeyID()
	sign := func() (*Signed, error) {
		return s.Sign(&Receipt{Request: RequestRef{Kind: "DeletionRequest", Name: "r", UID: "u"}})
	}
	if signed, err := sign(); err != nil || signed.KeyID != first {
		t.Fatalf("first signature: %v", err)
	}

	// A new key in the Secret is not used before the interval has passed, and is used after.
	_, next, _ := ed25519.GenerateKey(rand.Reader)
	nextPEM, _ := PrivateKeyPEM(next)
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ops", Name: KeySecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	secret.Data[KeyPEM] = nextPEM
	if err := c.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	if signed, _ := sign(); signed.KeyID != first {
		t.Fatalf("the key was re-read before the reload interval")
	}
	s.SetReloadInterval(0)
	signed, err := sign()
	if err != nil || signed.KeyID != KeyID(next.Public().(ed25519.PublicKey)) {
		t.Fatalf("after the interval: %v, key %s", err, signed.KeyID)
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ops", Name: PublicKeyConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	ks, err := ParseKeySet([]byte(cm.Data[KeySetKey]))
	if err != nil || len(ks) != 2 || ks[1].KeyID != signed.KeyID || ks[0].NotAfter == nil {
		t.Fatalf("the new key was not published before use: %+v %v", ks, err)
	}
	if _, err := VerifyWithKeySet(signed.JSON, []byte(EncodeSignature(signed.Signature)), ks); err != nil {
		t.Fatalf("the receipt of the reloaded key does not verify: %v", err)
	}

	// The Secret cannot be read: the last key, read a moment ago, is still good.
	failReads = true
	if again, err := sign(); err != nil || again.KeyID != signed.KeyID {
		t.Fatalf("with the Secret unreadable just after a read: %v", err)
	}
	// An hour later it may have been rotated away beyond its grace: no signature.
	s.mu.Lock()
	s.follow.readAt = time.Now().Add(-RotationGrace)
	s.mu.Unlock()
	if _, err := sign(); err == nil {
		t.Fatal("signed with a key last read RotationGrace ago")
	}
}
