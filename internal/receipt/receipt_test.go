package receipt_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

func sample() *receipt.Receipt {
	at := time.Date(2026, 11, 1, 9, 30, 15, 999, time.FixedZone("CET", 3600))
	return &receipt.Receipt{Request: receipt.RequestRef{APIVersion: "privacy.dsr.dev/v1alpha1", Kind: "DeletionRequest", Namespace: "shop", Name: "r", UID: "u-1"},
		SubjectDigest: "sha256:00", Regulation: "GDPR", ReceivedAt: at, Deadline: at, CompletedAt: at, IssuedAt: at,
		Stores: []receipt.Store{
			{Kind: "DataStore", Name: "z", Type: "redis", Erased: 1},
			{Kind: "ClusterDataStore", Name: "a", Type: "postgres", Retained: 2, RetainedReasons: []receipt.RetainedReason{{Location: "b", Records: 1, Reason: "<tax>"}, {Location: "a", Records: 1, Reason: "law"}}},
			{Kind: "DataStore", Name: "b", Type: "mysql"},
		}}
}

func TestCanonicalIsStable(t *testing.T) {
	a, err := receipt.Canonical(sample())
	if err != nil {
		t.Fatal(err)
	}
	r := sample()
	r.Stores[0], r.Stores[2] = r.Stores[2], r.Stores[0]
	b, _ := receipt.Canonical(r)
	if string(a) != string(b) {
		t.Errorf("order changes the bytes:\n%s\n%s", a, b)
	}
	s := string(a)
	for _, want := range []string{`"receivedAt":"2026-11-01T08:30:15Z"`, `"reason":"<tax>"`, `{"kind":"DataStore","name":"b"`} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in %s", want, s)
		}
	}
	if strings.Index(s, `"name":"b"`) > strings.Index(s, `"name":"z"`) || strings.Index(s, `"name":"z"`) > strings.Index(s, `"name":"a"`) {
		t.Errorf("stores not sorted DataStores first, by name: %s", s)
	}
	if strings.HasSuffix(s, "\n") {
		t.Error("trailing newline")
	}
}

func TestSignVerifyTamper(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s := receipt.NewSigner(priv)
	signed, err := s.Sign(sample())
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(receipt.EncodeSignature(signed.Signature))
	rc, err := receipt.Verify(signed.JSON, sig, s.PublicKey())
	if err != nil || rc.KeyID != s.KeyID() || len(s.KeyID()) != 16 || receipt.Digest(signed.JSON) != signed.SHA256 {
		t.Fatalf("%v %+v", err, rc)
	}
	for i := range signed.JSON {
		bad := append([]byte(nil), signed.JSON...)
		bad[i] ^= 1
		if _, err := receipt.Verify(bad, sig, s.PublicKey()); err == nil {
			t.Fatalf("byte %d flipped and still verified", i)
		}
	}
	badSig := append([]byte(nil), signed.Signature...)
	badSig[3] ^= 1
	if _, err := receipt.Verify(signed.JSON, []byte(receipt.EncodeSignature(badSig)), s.PublicKey()); !errors.Is(err, receipt.ErrSignatureMismatch) {
		t.Errorf("%v", err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := receipt.Verify(signed.JSON, sig, other.Public().(ed25519.PublicKey)); !errors.Is(err, receipt.ErrSignatureMismatch) {
		t.Errorf("%v", err)
	}
}

func TestEnsureSigner(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()
	c := env.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dsr-system"}}); err != nil {
		t.Fatal(err)
	}
	// Replicas starting together agree on one key.
	ids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := receipt.EnsureSigner(ctx, c, c, "dsr-system")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = s.KeyID()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("replicas disagree: %v", ids)
		}
	}
	var pub corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "dsr-system", Name: receipt.PublicKeyConfigMapName}, &pub); err != nil {
		t.Fatal(err)
	}
	key, err := receipt.ParsePublicKey([]byte(pub.Data[receipt.KeyPEM]))
	if err != nil || receipt.KeyID(key) != ids[0] || pub.Data[receipt.KeyIDKey] != ids[0] {
		t.Errorf("published key %v %s", err, pub.Data[receipt.KeyIDKey])
	}
	again, err := receipt.EnsureSigner(ctx, c, c, "dsr-system")
	if err != nil || again.KeyID() != ids[0] {
		t.Errorf("restart changed the key: %v", err)
	}

	// A damaged key is reported, never replaced.
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "dsr-system", Name: receipt.KeySecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	secret.Data[receipt.KeyPEM] = []byte("garbage")
	if err := c.Update(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.EnsureSigner(ctx, c, c, "dsr-system"); err == nil || !strings.Contains(err.Error(), "never replaced") {
		t.Errorf("%v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "dsr-system", Name: receipt.KeySecretName}, &secret); err != nil || string(secret.Data[receipt.KeyPEM]) != "garbage" {
		t.Error("the damaged key was replaced")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "receipt tests failed")
	}
	os.Exit(code)
}
