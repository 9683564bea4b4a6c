package receipt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EnsureSigner loads the installation's signing key, creating it on first start, and publishes its
// public key. The Signer re-reads the key Secret every DefaultReloadInterval (see reload.go). A malformed key is an error, never replaced: replacing it would orphan every receipt
// signed so far.
func EnsureSigner(ctx context.Context, c client.Client, reader client.Reader, namespace string) (*Signer, error) {
	key := types.NamespacedName{Namespace: namespace, Name: KeySecretName}
	var secret corev1.Secret
	err := reader.Get(ctx, key, &secret)
	if apierrors.IsNotFound(err) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		keyPEM, merr := PrivateKeyPEM(priv)
		if merr != nil {
			return nil, merr
		}
		secret = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: KeySecretName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{KeyPEM: keyPEM},
		}
		err = c.Create(ctx, &secret)
		if apierrors.IsAlreadyExists(err) {
			// Another replica created it first: use that one.
			err = reader.Get(ctx, key, &secret)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("receipt signing key Secret %s/%s: %w", namespace, KeySecretName, err)
	}
	priv, err := parsePrivateKey(secret.Data[KeyPEM])
	if err != nil {
		return nil, fmt.Errorf("receipt signing key Secret %s/%s, key %q: %w (fix or delete the Secret; it is never replaced automatically)", namespace, KeySecretName, KeyPEM, err)
	}
	signer := NewSigner(priv)
	if err := publish(ctx, c, reader, namespace, signer); err != nil {
		return nil, err
	}
	// A rotation is picked up from the Secret within DefaultReloadInterval, without a restart.
	signer.followKeySecret(c, reader, namespace)
	return signer, nil
}

// PrivateKeyPEM encodes a signing key as PKCS#8 PEM, the form the key Secret holds under KeyPEM.
func PrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PKCS#8 PEM Ed25519 signing key (a customer-supplied key, for instance).
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) { return parsePrivateKey(data) }

// Publish adds s's public key to the published key set as the current key (see publish); the
// operator does it on every start, and `kubectl dsr keys rotate` right after a rotation.
func Publish(ctx context.Context, c client.Client, reader client.Reader, namespace string, s *Signer) error {
	return publish(ctx, c, reader, namespace, s)
}

func parsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return priv, nil
}

// PublicKeyPEM encodes a public key as PKIX PEM.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKey reads a PKIX PEM Ed25519 public key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return pub, nil
}

// publish makes the public-key ConfigMap's current key match the signer and adds the signer's key
// to the key set (KeySetKey), closing the validity of the key it replaces; earlier keys stay, so
// receipts they signed still verify. Replicas starting together may race to create or repair it;
// since they share one key, losing the race to a replica writing the same content is success, so
// conflicts are retried against a fresh read.
func publish(ctx context.Context, c client.Client, reader client.Reader, namespace string, s *Signer) error {
	key := types.NamespacedName{Namespace: namespace, Name: PublicKeyConfigMapName}
	err := retry.OnError(retry.DefaultRetry, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		var cm corev1.ConfigMap
		getErr := reader.Get(ctx, key, &cm)
		if getErr != nil && !apierrors.IsNotFound(getErr) {
			return getErr
		}
		want, err := publishedData(cm.Data, s, time.Now())
		if err != nil {
			return err
		}
		if apierrors.IsNotFound(getErr) {
			cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: PublicKeyConfigMapName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator"}}, Data: want}
			return c.Create(ctx, &cm)
		}
		if maps.Equal(cm.Data, want) {
			return nil
		}
		cm.Data = want
		return c.Update(ctx, &cm)
	})
	if err != nil {
		return fmt.Errorf("publishing the receipt public key in ConfigMap %s/%s: %w", namespace, PublicKeyConfigMapName, err)
	}
	return nil
}

// publishedData is the public-key ConfigMap's data with s as the current key. A key set that does
// not parse is an error rather than replaced: it is what old receipts are verified with.
func publishedData(current map[string]string, s *Signer, now time.Time) (map[string]string, error) {
	var ks KeySet
	if data := current[KeySetKey]; data != "" {
		var err error
		if ks, err = ParseKeySet([]byte(data)); err != nil {
			return nil, fmt.Errorf("%s in the public-key ConfigMap: %w (fix it; it is never replaced automatically)", KeySetKey, err)
		}
	}
	ks, changed := ks.withCurrent(s.PublicKey(), now)
	keySet := current[KeySetKey]
	if changed {
		keySet = string(ks.Marshal())
	}
	return map[string]string{KeyPEM: string(PublicKeyPEM(s.PublicKey())), KeyIDKey: s.KeyID(), KeySetKey: keySet}, nil
}
