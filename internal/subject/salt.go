package subject

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SaltSecretName is the per-installation Secret, in the operator's namespace, whose "salt" key
// salts subject digests and the "hash" mask strategy.
const (
	SaltSecretName = "dsr-operator-salt"
	saltKey        = "salt"
	saltBytes      = 32
)

// EnsureSalt returns the installation's salt, creating it on first start. Two replicas starting
// together both end up with the one that was created first.
func EnsureSalt(ctx context.Context, c client.Client, namespace string) ([]byte, error) {
	key := types.NamespacedName{Namespace: namespace, Name: SaltSecretName}
	var secret corev1.Secret
	err := c.Get(ctx, key, &secret)
	if err == nil {
		salt := secret.Data[saltKey]
		if len(salt) < 16 {
			return nil, fmt.Errorf("secret %s/%s: key %q must hold at least 16 bytes", namespace, SaltSecretName, saltKey)
		}
		return salt, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading salt Secret %s/%s: %w", namespace, SaltSecretName, err)
	}
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	secret = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SaltSecretName,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "dsr-operator"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{saltKey: salt},
	}
	if err := c.Create(ctx, &secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return EnsureSalt(ctx, c, namespace)
		}
		return nil, fmt.Errorf("creating salt Secret %s/%s: %w", namespace, SaltSecretName, err)
	}
	return salt, nil
}
