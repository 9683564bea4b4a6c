package receipt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "receipt-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func getSecret(t *testing.T, ns string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: receipt.KeySecretName}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func getPublic(t *testing.T, ns string) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: receipt.PublicKeyConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

// checkPublished asserts that the public-key ConfigMap verifies what s signs.
func checkPublished(t *testing.T, ns string, s *receipt.Signer) {
	t.Helper()
	cm := getPublic(t, ns)
	pub, err := receipt.ParsePublicKey([]byte(cm.Data[receipt.KeyPEM]))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data[receipt.KeyIDKey] != s.KeyID() || receipt.KeyID(pub) != s.KeyID() {
		t.Errorf("published key id %s, signer %s", cm.Data[receipt.KeyIDKey], s.KeyID())
	}
	signed, err := s.Sign(sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.Verify(signed.JSON, []byte(receipt.EncodeSignature(signed.Signature)), pub); err != nil {
		t.Errorf("the published key does not verify the signer's receipts: %v", err)
	}
}

func TestEnsureSignerCreatesOnceAndReuses(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	c := env.Client
	first, err := receipt.EnsureSigner(ctx, c, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	secret := getSecret(t, ns)
	if _, err := x509.ParsePKCS8PrivateKey(mustPEM(t, secret.Data[receipt.KeyPEM], "PRIVATE KEY")); err != nil {
		t.Errorf("the key is not PKCS#8: %v", err)
	}
	checkPublished(t, ns, first)
	cm := getPublic(t, ns)

	again, err := receipt.EnsureSigner(ctx, c, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	if again.KeyID() != first.KeyID() {
		t.Errorf("restart changed the key: %s -> %s", first.KeyID(), again.KeyID())
	}
	if s := getSecret(t, ns); s.UID != secret.UID || s.ResourceVersion != secret.ResourceVersion {
		t.Error("a restart rewrote the key Secret")
	}
	if c2 := getPublic(t, ns); c2.ResourceVersion != cm.ResourceVersion {
		t.Error("a restart rewrote a public-key ConfigMap that was already right")
	}
}

func TestEnsureSignerRepairsPublishedKey(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	c := env.Client
	s, err := receipt.EnsureSigner(ctx, c, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	// Someone swaps in their own key: the next start puts the real one back.
	forged := receipt.NewSigner(func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k }())
	cm := getPublic(t, ns)
	cm.Data = map[string]string{receipt.KeyPEM: string(receipt.PublicKeyPEM(forged.PublicKey())), receipt.KeyIDKey: forged.KeyID()}
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.EnsureSigner(ctx, c, c, ns); err != nil {
		t.Fatal(err)
	}
	checkPublished(t, ns, s)

	// And a deleted one is published again.
	if err := c.Delete(ctx, getPublic(t, ns)); err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.EnsureSigner(ctx, c, c, ns); err != nil {
		t.Fatal(err)
	}
	checkPublished(t, ns, s)
}

func TestEnsureSignerReplicasAgree(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	c := env.Client
	signers := make([]*receipt.Signer, 6)
	errs := make([]error, len(signers))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range signers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			signers[i], errs[i] = receipt.EnsureSigner(ctx, c, c, ns)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	for _, s := range signers {
		if s.KeyID() != signers[0].KeyID() {
			t.Fatalf("replicas disagree on the key")
		}
	}
	checkPublished(t, ns, signers[0])
}

func TestEnsureSignerKeepsDamagedKey(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"garbage":         []byte("garbage"),
		"empty":           nil,
		"not PKCS#8":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x01, 0x00}}),
		"public key":      []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"),
		"not Ed25519 key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			ns := namespace(t)
			if _, err := receipt.EnsureSigner(ctx, c, c, ns); err != nil {
				t.Fatal(err)
			}
			published := getPublic(t, ns)
			secret := getSecret(t, ns)
			secret.Data = map[string][]byte{receipt.KeyPEM: data}
			if err := c.Update(ctx, secret); err != nil {
				t.Fatal(err)
			}
			damaged := getSecret(t, ns)

			_, err := receipt.EnsureSigner(ctx, c, c, ns)
			if err == nil || !strings.Contains(err.Error(), receipt.KeySecretName) || !strings.Contains(err.Error(), "never replaced") {
				t.Fatalf("want an error naming the Secret and saying it is kept, got %v", err)
			}
			if s := getSecret(t, ns); s.ResourceVersion != damaged.ResourceVersion || string(s.Data[receipt.KeyPEM]) != string(data) {
				t.Error("the damaged key was replaced")
			}
			if cm := getPublic(t, ns); cm.ResourceVersion != published.ResourceVersion {
				t.Error("the published key changed although the signing key is unusable")
			}
		})
	}
}

func TestEnsureSignerMissingNamespace(t *testing.T) {
	_, err := receipt.EnsureSigner(context.Background(), env.Client, env.Client, "no-such-namespace")
	if err == nil || !strings.Contains(err.Error(), "no-such-namespace") {
		t.Errorf("want an error naming the namespace, got %v", err)
	}
}

func mustPEM(t *testing.T, data []byte, typ string) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil || b.Type != typ {
		t.Fatalf("not a PEM %s", typ)
	}
	return b.Bytes
}
