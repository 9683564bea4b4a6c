package suppression

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// KeySecretName is the per-installation Secret, in the operator's namespace, whose "key" keys
// the hashes of lists fed by DeletionRequests. Losing it makes those lists unmatchable (the
// operator then creates a new key and their entries never match again): back it up with the
// receipt signing key (docs/suppression.md).
const (
	KeySecretName = "dsr-operator-suppression-key"
	keyDataKey    = "key"
	keyBytes      = 32
)

// EnsureKey returns the installation's suppression key, creating it on first use. Two replicas
// starting together both end up with the one that was created first.
func EnsureKey(ctx context.Context, c client.Client, namespace string) ([]byte, error) {
	name := types.NamespacedName{Namespace: namespace, Name: KeySecretName}
	var secret corev1.Secret
	err := c.Get(ctx, name, &secret)
	if err == nil {
		key := secret.Data[keyDataKey]
		if len(key) < 16 {
			return nil, fmt.Errorf("secret %s/%s: key %q must hold at least 16 bytes", namespace, KeySecretName, keyDataKey)
		}
		return key, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading suppression key Secret %s/%s: %w", namespace, KeySecretName, err)
	}
	key := make([]byte, keyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	secret = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: KeySecretName,
			Labels: map[string]string{privacyv1alpha1.ManagedByLabel: privacyv1alpha1.ManagedByValue}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{keyDataKey: key},
	}
	if err := c.Create(ctx, &secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return EnsureKey(ctx, c, namespace)
		}
		return nil, fmt.Errorf("creating suppression key Secret %s/%s: %w", namespace, KeySecretName, err)
	}
	return key, nil
}
