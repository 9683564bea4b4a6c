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

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// SaltSecretName is the per-installation Secret, in the operator's namespace, whose "salt" key
// salts subject digests and the "hash" mask strategy.
const (
	SaltSecretName = "dsr-operator-salt"
	saltKey        = "salt"
	saltBytes      = 32
)

// EnsureSalt returns the installation's salt, creating it on first start.
func EnsureSalt(ctx context.Context, c client.Client, namespace string) ([]byte, error) {
	return EnsureRandomSecret(ctx, c, namespace, SaltSecretName, saltKey, "salt")
}

// EnsureRandomSecret returns the 32 random bytes under dataKey of the Secret namespace/name,
// creating the Secret (labelled as managed by the operator) on first use. Two replicas starting
// together both end up with the one that was created first. what names the value in errors.
func EnsureRandomSecret(ctx context.Context, c client.Client, namespace, name, dataKey, what string) ([]byte, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var secret corev1.Secret
	err := c.Get(ctx, key, &secret)
	if err == nil {
		value := secret.Data[dataKey]
		if len(value) < 16 {
			return nil, fmt.Errorf("secret %s/%s: key %q must hold at least 16 bytes", namespace, name, dataKey)
		}
		return value, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading %s Secret %s/%s: %w", what, namespace, name, err)
	}
	value := make([]byte, saltBytes)
	if _, err := rand.Read(value); err != nil {
		return nil, err
	}
	secret = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{privacyv1alpha1.ManagedByLabel: privacyv1alpha1.ManagedByValue}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{dataKey: value},
	}
	if err := c.Create(ctx, &secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return EnsureRandomSecret(ctx, c, namespace, name, dataKey, what)
		}
		return nil, fmt.Errorf("creating %s Secret %s/%s: %w", what, namespace, name, err)
	}
	return value, nil
}
